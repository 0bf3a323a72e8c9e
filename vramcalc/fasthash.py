"""BLAKE2b without importing hashlib: ``import hashlib`` also loads OpenSSL (about 2 ms of every
start-up); CPython's own BLAKE2 module is what ``hashlib.blake2b`` is anyway."""

from __future__ import annotations

try:
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - Pythons without CPython's _blake2
    from hashlib import blake2b

__all__ = ["blake2b"]

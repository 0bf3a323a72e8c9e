"""``vramcalc probe``: run the real ViT towers (transformers, random weights) and check vit.py against them.

Importing this package does not import torch; ``run_probe`` does, and raises ProbeUnavailableError
(with the install command) where torch or transformers is missing.
"""

from vramcalc.probe.results import Compared, ProbeReport, ProbeRow, ProbeSummary
from vramcalc.probe.run import run_probe

__all__ = ["Compared", "ProbeReport", "ProbeRow", "ProbeSummary", "run_probe"]

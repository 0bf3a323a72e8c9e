"""vramcalc catalog (YAML files, shipped as package data)."""

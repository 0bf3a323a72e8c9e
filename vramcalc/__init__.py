"""vramcalc: will this model run on my GPU?"""

__version__ = "0.1.0"

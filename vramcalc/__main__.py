"""python -m vramcalc"""

from vramcalc.cli import main

main()

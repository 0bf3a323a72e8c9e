"""python -m vramcalc.cli"""

from vramcalc.cli.app import main

main()

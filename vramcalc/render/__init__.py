"""Every table and picture the command line prints, one module per result (rich renderables or text).

- ``estimate``: ``check`` (memory table, bar, verdict, speed) and the verdict words shared with ``fit``
- ``catalog``: ``list``, ``show`` and ``validate``
- ``fit``: the ``fit`` table
- ``probe``: the ``probe`` GPU lines, comparison table and notes
- ``imports``: the catalog YAML that ``import`` prints (and writes)

Renderers take result objects and return renderables; they never print, and never import the CLI.
Import the submodule you need: this package imports none of them (start-up time).
"""

"""Entry points: the Dagster Definitions loaded by workspace.yaml, and the `ibw` command line.

May import: assets, live, ibkr, warehouse, and ibsim (only to start the embedded gateway).
"""

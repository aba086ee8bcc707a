"""The work that runs with or without Dagster, called by the Dagster assets and by `ibw` alike:
the backfill of bar series (`bar_series`, `bar_batch`, `backfill`), the account snapshot
(`snapshot`) and the universe file they read (`universe_file`). Free of Dagster, so the command
line starts fast.

May import: ibkr and warehouse; never dagster, assets, live, pipelines or cli.
"""

"""Dagster assets and asset checks: universe, option chains, bars, account snapshots; and the
backfill they share with the command line.

Modules: `contracts`, `option_chains` and `bars` (the assets), `resources` (IB, warehouse,
universe), `failures` (one-sentence Dagster failures), and, free of Dagster so `ibw backfill`
starts fast: `bar_series` (a contract's bar series, its gaps and their cost), `bar_batch` (bars
held per session until complete) and `backfill` (the paced fill of one series).

May import: dagster, ibkr and warehouse; never live, pipelines or ibsim.
"""

"""Dagster assets and asset checks: universe, option chains, bars, account snapshots.

May import: dagster, ibkr and warehouse; never live, pipelines or ibsim.
"""

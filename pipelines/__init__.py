"""The Dagster code location loaded by workspace.yaml (`definitions`).

May import: assets and dagster; never cli.
"""

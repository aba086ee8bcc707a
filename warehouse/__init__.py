"""Storage: pandera schemas, the atomic Parquet writer, the coverage ledger, the quarantine and
the DuckDB catalog.

May import: polars, pyarrow, duckdb, pandera and the standard library; never IB or Dagster.
"""

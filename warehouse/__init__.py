"""Storage: pandera schemas, the atomic Parquet writer, the coverage ledger, the quarantine and
the DuckDB catalog.

Modules: `layout` (where everything lives under `$IBW_HOME`), `parquet` (atomic partition writes
and reads), `columns` (the column types and lineage every model shares), `schemas` (the batch
datasets' pandera models and the registry of every dataset), `live_schemas` (the live
datasets' models), `validation` (split a frame into valid and quarantined rows), `quarantine`
(store the rejected rows), `security_master` (the contract history keyed by conId), `ledger`
(the coverage ledger: what each series holds per session), `bars` (bars per series and year,
replaced a session at a time), `heads` (IB's head timestamps), `locks` (one writer per series
across processes), `live_streams` (the live service's ticks and 5-s bars: a file per flush,
compaction), `live_orders` (its orders, fills and reconciliation differences), `unreadable`
(lake files that cannot be read: an error naming them, moving them aside), `integrity` (the
ledger checked against the lake, lost sessions returned to the gaps) and `catalog` (the DuckDB
file of views analysts open read-only).

May import: polars, pyarrow, duckdb, pandera and the standard library; never IB or Dagster.
"""

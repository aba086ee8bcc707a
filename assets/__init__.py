"""Dagster definitions by domain, one folder each exposing `definitions(...)`: `universe`
(contracts, option chains), `bars` (the bars asset, its checks, the backfill sensor), `account`
(the account snapshot assets, jobs and schedules) and `live` (the live service's datasets,
observer and compaction). Shared by every domain: `resources` (IB, warehouse, universe,
snapshot settings), `metadata` (column schemas, DuckDB view names, owners), `trading_days` (the
New York trading-day partitions) and `failures` (one-sentence failures, gateway retries). The
work itself runs in `engines`, which `ibw` calls without Dagster.

May import: dagster, engines, ibkr and warehouse; never live, pipelines, cli or ibsim.
"""

"""The live datasets in Dagster: external assets, the observation sensor, daily compaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from assets.live.compaction import live_compaction, live_compaction_daily
from assets.live.observer import HEALTH_FILE, live_observer
from assets.resources import WarehouseResource
from tests.kit.live import DAY, bars, ticks
from tests.kit.scenarios import AAPL
from tests.kit.scenarios import EURUSD as EUR
from warehouse import live_streams as ls


def shifted(frame: pl.DataFrame, to: datetime) -> pl.DataFrame:
    """The frame moved so that its first `time` is `to` (bars stay on the 5-s grid)."""
    start = frame.get_column("time").min()
    return frame.with_columns(pl.col("time") + (to - start))


def test_definitions_declare_the_live_assets() -> None:
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    for name in ("live_ticks", "live_bars", "live_orders", "live_fills"):
        node = graph.get(dg.AssetKey(name))
        assert not node.is_materializable  # external: the service writes them
        assert "ib" in node.kinds
        assert "ibw live" in (node.description or "")
    assert graph.get(dg.AssetKey("live_compaction")).partitions_def is not None
    assert {s.name for s in defs.sensors} >= {"live_observer"}
    schedule = next(s for s in defs.schedules if s.name == "live_compaction_daily")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("15 0 * * *", "UTC")


def evaluate(home: Path) -> dict[str, dict]:
    context = dg.build_sensor_context(resources={"warehouse": WarehouseResource(home=str(home))})
    result = live_observer(context)
    assert isinstance(result, dg.SensorResult)
    return {e.asset_key.to_user_string(): e.metadata for e in result.asset_events}


def test_the_observer_without_a_service_or_data(tmp_path: Path) -> None:
    seen = evaluate(tmp_path)
    assert set(seen) == {"live_ticks", "live_bars"}
    bars_seen = seen["live_bars"]
    assert bars_seen["service"].value.startswith("service not running")
    assert bars_seen["rows_today"].value == 0 and bars_seen["newest"].value == "no rows yet"


def test_the_observer_reports_lag_rows_files_and_stream_health(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now.replace(second=now.second - now.second % 5) - timedelta(seconds=30)
    if start.date() != now.date():  # just after midnight: keep everything in today
        start = now.replace(hour=0, minute=0, second=0)
    ls.append(tmp_path, ls.BARS, shifted(bars(AAPL, [0, 5]), start))
    ls.append(tmp_path, ls.BARS, shifted(bars(EUR, [0]), start))
    ls.append(tmp_path, ls.TICKS, shifted(ticks(EUR, [0.1, 0.2, 0.3]), start))
    stream = {"con_id": AAPL, "symbol": "AAPL", "state": "ok", "bars": 2}
    health = {"written_at": now.isoformat(), "connected": True, "streams": [stream], "orders": {}}
    (tmp_path / HEALTH_FILE).parent.mkdir(parents=True)
    (tmp_path / HEALTH_FILE).write_text(json.dumps(health))

    seen = evaluate(tmp_path)
    bars_seen, ticks_seen = seen["live_bars"], seen["live_ticks"]
    assert (bars_seen["rows_today"].value, bars_seen["files_today"].value) == (3, 2)
    assert (ticks_seen["rows_today"].value, ticks_seen["files_today"].value) == (3, 1)
    assert 0 <= bars_seen["lag_seconds"].value < 3600
    assert bars_seen["service"].value == "running, connected"
    assert bars_seen["streams"].value == [stream]

    health["written_at"] = (now - timedelta(minutes=10)).isoformat()
    (tmp_path / HEALTH_FILE).write_text(json.dumps(health))
    assert evaluate(tmp_path)["live_bars"]["service"].value.startswith("service not running")


def test_compaction_materializes_a_day(tmp_path: Path) -> None:
    ls.append(tmp_path, ls.BARS, bars(AAPL, [0, 5]))
    ls.append(tmp_path, ls.BARS, bars(AAPL, [5, 10], source="refill", received=3))
    ls.append(tmp_path, ls.TICKS, ticks(EUR, [0.1]))
    result = dg.materialize(
        [live_compaction],
        partition_key=DAY.isoformat(),
        resources={"warehouse": WarehouseResource(home=str(tmp_path))},
    )
    assert result.success
    [done] = result.asset_materializations_for_node("live_compaction")
    meta = {k: v.value for k, v in done.metadata.items()}
    assert (meta["live_bars_files_before"], meta["live_bars_files_after"]) == (2, 1)
    assert (meta["live_bars_rows"], meta["live_ticks_rows"]) == (3, 1)
    assert len(ls.day_files(tmp_path, ls.BARS, DAY)) == 1


def test_the_schedule_compacts_the_day_that_ended() -> None:
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2024, 7, 11, 0, 15, tzinfo=UTC)
    )
    request = live_compaction_daily(context)
    assert request.partition_key == "2024-07-10"

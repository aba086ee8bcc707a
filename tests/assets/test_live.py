"""The live datasets in Dagster: external assets with their columns and checks, the observer that
turns the checks red for a dead or lagging service (on a real DagsterInstance, from real files),
the order datasets' numbers, and compaction on the days the service wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from assets.live.compaction import live_compaction, live_compaction_daily
from assets.live.observer import HEALTH_FILE, SERVICE_CHECK, live_observer
from assets.metadata import OWNERS
from assets.resources import WarehouseResource
from live.export import export_journal
from live.intents import OrderIntent
from live.journal import Journal
from live.ledger import ExecutionRecord
from tests.kit.live import DAY, T0, bars, ticks
from tests.kit.scenarios import AAPL
from tests.kit.scenarios import EURUSD as EUR
from warehouse import live_streams as ls
from warehouse.live_schemas import LIVE_SCHEMAS


def shifted(frame: pl.DataFrame, to: datetime) -> pl.DataFrame:
    """The frame moved so that its first `time` is `to` (bars stay on the 5-s grid)."""
    start = frame.get_column("time").min()
    return frame.with_columns(pl.col("time") + (to - start))


def test_definitions_declare_the_live_assets() -> None:
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    for name in ("live_ticks", "live_bars", "live_orders", "live_fills", "live_differences"):
        node = graph.get(dg.AssetKey(name))
        assert not node.is_materializable  # external: the service writes them
        assert "ib" in node.kinds and node.owners == OWNERS
        assert "ibw live" in (node.description or "")
        assert node.metadata["dagster/table_name"] == f"warehouse.{name}"
        assert {"con_id", "source"} & {
            c.name for c in node.metadata["dagster/column_schema"].columns
        }
        checks = {k.name for k in graph.asset_check_keys if k.asset_key == node.key}
        assert SERVICE_CHECK in checks
    assert graph.get(dg.AssetKey("live_compaction")).partitions_def.name == "live_days"
    observer = next(s for s in defs.sensors if s.name == "live_observer")
    watched = observer.asset_selection.resolve(graph)  # so the assets' pages show the sensor
    assert {k.to_user_string() for k in watched} == set(LIVE_SCHEMAS)
    schedule = next(s for s in defs.schedules if s.name == "live_compaction_daily")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("15 0 * * *", "UTC")


def evaluate(instance: dg.DagsterInstance, home: Path) -> tuple[dict, dict, dg.SensorResult]:
    """One tick of the observer, its events reported to `instance` as the daemon does:
    (observations by asset, check evaluations by (asset, check), the result)."""
    with dg.build_sensor_context(
        instance=instance, resources={"warehouse": WarehouseResource(home=str(home))}
    ) as context:
        result = live_observer(context)
    assert isinstance(result, dg.SensorResult)
    observed, checked = {}, {}
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
        if isinstance(event, dg.AssetCheckEvaluation):
            checked[(event.asset_key.to_user_string(), event.check_name)] = event
        else:
            observed[event.asset_key.to_user_string()] = event.metadata
    return observed, checked, result


def latest_status(instance: dg.DagsterInstance, asset: str, check: str) -> str:
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    return instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[
        key
    ].status.value


def write_health(home: Path, written_at: datetime, streams: list[dict]) -> None:
    health = {"written_at": written_at.isoformat(), "connected": True, "streams": streams}
    (home / HEALTH_FILE).parent.mkdir(parents=True, exist_ok=True)
    (home / HEALTH_FILE).write_text(json.dumps(health))


def test_a_service_that_never_ran_warns_on_every_live_check(tmp_path: Path) -> None:
    """Yellow, not red: nothing is broken while the live side is not in use yet."""
    with dg.instance_for_test() as instance:
        observed, checked, result = evaluate(instance, tmp_path)
        assert set(observed) == set(LIVE_SCHEMAS)
        assert observed["live_bars"]["service"].value.startswith("service not running")
        assert observed["live_bars"]["rows_today"].value == 0
        assert observed["live_bars"]["newest"].value == "no rows yet"
        assert observed["live_orders"]["rows"].value == 0
        for name in LIVE_SCHEMAS:
            assert latest_status(instance, name, SERVICE_CHECK) == "FAILED"
        assert latest_status(instance, "live_bars", "live_bars_fresh") == "FAILED"
        assert checked[("live_ticks", SERVICE_CHECK)].description == (
            "Service not running (no health file yet: start `ibw live`)."
        )
        assert {c.severity for c in checked.values()} == {dg.AssetCheckSeverity.WARN}
        assert result.dynamic_partitions_requests == []  # no day written, no partition


def recent_start(now: datetime) -> datetime:
    start = now.replace(second=now.second - now.second % 5) - timedelta(seconds=30)
    if start.date() != now.date():  # just after midnight: keep everything in today
        start = now.replace(hour=0, minute=0, second=0)
    return start


def test_a_running_service_is_green_with_lag_rows_and_files_and_a_stale_one_red(tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    start = recent_start(now)
    ls.append(tmp_path, ls.BARS, shifted(bars(AAPL, [0, 5]), start))
    ls.append(tmp_path, ls.BARS, shifted(bars(EUR, [0]), start))
    ls.append(tmp_path, ls.TICKS, shifted(ticks(EUR, [0.1, 0.2, 0.3]), start))
    stream = {"con_id": AAPL, "symbol": "AAPL", "state": "ok", "bars": 2,
              "last_bar_at": (start + timedelta(seconds=5)).isoformat()}  # fmt: skip
    write_health(tmp_path, now, [stream])

    with dg.instance_for_test() as instance:
        observed, checked, result = evaluate(instance, tmp_path)
        bars_seen, ticks_seen = observed["live_bars"], observed["live_ticks"]
        assert (bars_seen["rows_today"].value, bars_seen["files_today"].value) == (3, 2)
        assert (ticks_seen["rows_today"].value, ticks_seen["files_today"].value) == (3, 1)
        assert 0 <= bars_seen["lag_seconds"].value < 3600
        assert bars_seen["service"].value == "running, connected"
        assert (bars_seen["streams"].value, bars_seen["streams_ok"].value) == (1, 1)
        assert bars_seen["stream_health"].value == [stream]
        fresh = checked[("live_bars", "live_bars_fresh")]
        assert fresh.passed, fresh.description
        assert fresh.metadata["stored_behind_seconds"].value == 0
        assert fresh.metadata["lag_seconds"].value == bars_seen["lag_seconds"].value
        for name in LIVE_SCHEMAS:
            assert latest_status(instance, name, SERVICE_CHECK) == "SUCCEEDED"
        [request] = result.dynamic_partitions_requests
        assert request.partition_keys == [now.date().isoformat()]

        write_health(tmp_path, now - timedelta(minutes=10), [stream])  # the service died
        _, checked, _ = evaluate(instance, tmp_path)
        assert latest_status(instance, "live_bars", SERVICE_CHECK) == "FAILED"
        assert latest_status(instance, "live_bars", "live_bars_fresh") == "FAILED"
        assert checked[("live_bars", SERVICE_CHECK)].metadata["health_age_seconds"].value >= 600
        assert checked[("live_bars", SERVICE_CHECK)].severity == dg.AssetCheckSeverity.ERROR


def test_a_lagging_service_turns_the_freshness_check_red(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = recent_start(now)
    ls.append(tmp_path, ls.BARS, shifted(bars(AAPL, [0]), start))
    heard = start + timedelta(minutes=5)  # heard five minutes of bars the lake does not hold
    stale = {"con_id": EUR, "symbol": "EUR", "state": "stale", "last_bar_at": heard.isoformat()}
    write_health(tmp_path, now, [stale])
    with dg.instance_for_test() as instance:
        _, checked, _ = evaluate(instance, tmp_path)
        fresh = checked[("live_bars", "live_bars_fresh")]
        assert not fresh.passed
        assert fresh.metadata["stored_behind_seconds"].value == 300
        assert fresh.metadata["streams_not_ok"].value == 1
        assert fresh.description == (
            "live_bars: streams not ok: EUR (stale); the lake is 300 s behind what the service "
            "heard."
        )
        assert checked[("live_bars", SERVICE_CHECK)].passed  # alive, but lagging
        assert fresh.severity == dg.AssetCheckSeverity.ERROR


def test_the_order_datasets_are_observed_with_numbers(tmp_path: Path) -> None:
    home = tmp_path / "ibw"
    with Journal(tmp_path / "journal.sqlite") as journal:
        journal.submit(OrderIntent(key="k1", account="DU123456", con_id=AAPL, action="BUY",
                                   quantity=10.0))  # fmt: skip
        journal.submit(OrderIntent(key="k2", account="DU123456", con_id=AAPL, action="BUY",
                                   quantity=5.0))  # fmt: skip
        journal.mark_sending("k1", 5, 9)
        journal.record_execution(
            ExecutionRecord(exec_id="x.1.01", side="BOT", shares=10, account="DU123456",
                            con_id=AAPL, price=180.0, time=T0, perm_id=7),
            "k1",
        )  # fmt: skip
        journal.record_difference("position", "DU123456 1", "DU123456 holds 1 but expects 0")
        export_journal(journal, home)
    with dg.instance_for_test() as instance:
        observed, _, _ = evaluate(instance, home)
    orders, fills, differences = (
        observed[n] for n in ("live_orders", "live_fills", "live_differences")
    )
    assert (orders["rows"].value, orders["orders_open"].value) == (2, 2)
    assert (fills["rows"].value, fills["fills_without_commission"].value) == (1, 1)
    assert fills["newest"].value == T0.timestamp()
    assert differences["differences_open"].value == 1
    assert fills["rows_today"].value == 0  # filled on T0, long ago
    assert orders["newest"].value >= T0.timestamp()


def test_compaction_materializes_a_day_the_service_wrote(tmp_path: Path) -> None:
    ls.append(tmp_path, ls.BARS, bars(AAPL, [0, 5]))
    ls.append(tmp_path, ls.BARS, bars(AAPL, [5, 10], source="refill", received=3))
    ls.append(tmp_path, ls.TICKS, ticks(EUR, [0.1]))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("live_days", [DAY.isoformat()])
        result = dg.materialize(
            [live_compaction],
            partition_key=DAY.isoformat(),
            resources={"warehouse": WarehouseResource(home=str(tmp_path))},
            instance=instance,
        )
    assert result.success
    [done] = result.asset_materializations_for_node("live_compaction")
    meta = {k: v.value for k, v in done.metadata.items()}
    assert (meta["live_bars_files_before"], meta["live_bars_files_after"]) == (2, 1)
    assert (meta["live_bars_rows"], meta["live_ticks_rows"]) == (3, 1)
    assert len(ls.day_files(tmp_path, ls.BARS, DAY)) == 1


def compaction_tick(instance: dg.DagsterInstance, home: Path, at: datetime):
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=at,
        resources={"warehouse": WarehouseResource(home=str(home))},
    ) as context:
        return live_compaction_daily(context)


def test_the_schedule_compacts_a_day_the_service_wrote_and_skips_the_others(tmp_path) -> None:
    ls.append(tmp_path, ls.BARS, bars(AAPL, [0, 5]))  # DAY, 2024-07-10
    with dg.instance_for_test() as instance:
        request = compaction_tick(instance, tmp_path, datetime(2024, 7, 11, 0, 15, tzinfo=UTC))
        assert request.partition_key == "2024-07-10"
        assert instance.get_dynamic_partitions("live_days") == ["2024-07-10"]
        skipped = compaction_tick(instance, tmp_path, datetime(2024, 7, 12, 0, 15, tzinfo=UTC))
        assert skipped.skip_message == (
            "The live service wrote no ticks or bars on 2024-07-11: nothing to compact."
        )

"""The Dagster code location and instance settings load as Dagster reads them."""

from __future__ import annotations

import shutil
import subprocess
import sys

import dagster as dg
import pytest

from cli.instance import INSTANCE_SETTINGS


def test_code_location_loads_every_asset_check_and_resource():
    from pipelines.definitions import defs

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    from engines.snapshot import DATASETS

    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        "contracts",
        "option_chains",
        "option_quotes",
        "bars",
        *DATASETS,
        "live_ticks",
        "live_bars",
        "live_orders",
        "live_fills",
        "live_differences",
        "live_positions",
        "live_pnl",
        "live_account_values",
        "live_compaction",
    }
    checks = {k.name for k in graph.asset_check_keys}
    assert checks == {
        "universe_entries_resolve",
        "rows_pass_validation",
        "chain_inside_window",
        "no_crossed_markets",
        "greeks_within_bounds",
        "put_call_parity",
        "bars_no_gaps",
        "bars_no_duplicates",
        "bars_ohlc_sane",
        "bars_in_lake",
        "live_service_running",
        "live_ticks_fresh",
        "live_bars_fresh",
    }
    assert set(defs.resources) == {"ib", "warehouse", "universe", "snapshot"}
    sensors = {s.name: s for s in defs.sensors}
    # live_observer: tests/assets/test_live.py; trading_day_partitions: test_option_chains.py;
    # the alert_ sensors: tests/assets/test_alerts.py
    assert set(sensors) == {
        "bars_backfill",
        "live_observer",
        "trading_day_partitions",
        "alert_run_failed",
        "alert_run_succeeded",
        "alert_snapshot_missing",
        "alert_pacing_exhausted",
    }
    assert all(s.description for s in sensors.values())
    assert {s.default_status for s in sensors.values()} == {dg.DefaultSensorStatus.RUNNING}
    sensor = sensors["bars_backfill"]
    assert {t.job_name for t in sensor.targets} == {"bars_job", "bars_bootstrap_job"}
    bars = graph.get(dg.AssetKey("bars"))
    assert bars.backfill_policy == dg.BackfillPolicy.multi_run(20)  # twenty contracts a run
    assert bars.partitions_def == dg.DynamicPartitionsDefinition(name="bar_contracts")
    schedules = {s.name: s for s in defs.schedules}
    nightly, fills = schedules["nightly_account_snapshot"], schedules["end_of_day_fills"]
    assert nightly.cron_schedule == "0 2 * * *"  # after IB's 00:15-01:45 New York reset
    assert fills.cron_schedule == "50 23 * * *"  # before IB's day (and its fills) turns
    assert nightly.execution_timezone == fills.execution_timezone == "America/New_York"
    assert set(schedules) == {
        "nightly_account_snapshot",
        "end_of_day_fills",
        "daily_option_chains",
        "daily_option_quotes",
        "live_compaction_daily",
    }
    quotes = schedules["daily_option_quotes"]
    assert (quotes.cron_schedule, quotes.execution_timezone) == ("45 15 * * *", "America/New_York")
    jobs = {job.name for job in defs.jobs}
    assert {
        "account_snapshot_job",
        "day_fills_job",
        "option_chains_job",
        "option_quotes_job",
        "live_compaction_job",
    } <= jobs


@pytest.mark.slow
def test_instance_settings_are_valid(tmp_path):
    shutil.copy(INSTANCE_SETTINGS, tmp_path / "dagster.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "instance", "info"],
        env={"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "free_slots_after_run_end_seconds: 300" in result.stdout
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:  # as the daemon reads it
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
        assert queue.tag_concurrency_limits == [
            {"key": "ibw/login", "value": {"applyLimitPerUniqueValue": True}, "limit": 2}
        ]
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 3
        assert instance.python_log_level == "INFO"

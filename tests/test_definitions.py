"""The Dagster code location and instance settings load as Dagster reads them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]


def test_code_location_loads_every_asset_check_and_resource():
    from pipelines.definitions import defs

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    from assets.account_snapshot import DATASETS

    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        "contracts",
        "option_chains",
        "bars",
        *DATASETS,
    }
    checks = {k.name for k in graph.asset_check_keys}
    assert checks == {
        "universe_entries_resolve",
        "rows_pass_validation",
        "chain_inside_window",
        "bars_no_gaps",
        "bars_no_duplicates",
        "bars_ohlc_sane",
    }
    assert set(defs.resources) == {"ib", "warehouse", "universe", "snapshot"}
    [sensor] = defs.sensors
    assert sensor.name == "bars_backfill"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    [schedule] = defs.schedules
    assert (schedule.cron_schedule, schedule.execution_timezone) == (
        "0 2 * * *",
        "America/New_York",
    )


def test_instance_settings_are_valid(tmp_path):
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "instance", "info"],
        env={"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "free_slots_after_run_end_seconds: 300" in result.stdout
    assert "max_concurrent_runs: 4" in result.stdout

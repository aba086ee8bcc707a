"""The Dagster code location and instance settings load as Dagster reads them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]


def test_code_location_loads():
    from pipelines.definitions import defs

    assert isinstance(defs, dg.Definitions)
    dg.Definitions.validate_loadable(defs)


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

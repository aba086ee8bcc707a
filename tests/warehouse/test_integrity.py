"""The lake against the ledger, against the embedded gateway and real Parquet in a temp
$IBW_HOME: a truncated or deleted bars file, a corrupt ledger file, `ibw verify`, the catalog's
refresh, the backfill that refills what was lost, and the `bars_in_lake` check through Dagster."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.resources import UniverseResource
from cli.main import main
from engines.bar_series import Target, targets
from ibkr.universe import BarSpec
from tests.kit.universe import dagster_resources, write_universe
from warehouse import bars as bar_store
from warehouse import layout, ledger
from warehouse.catalog import refresh_catalog
from warehouse.unreadable import UnreadableFile

AAPL, MSFT = 265598, 272093
DAILY = ["--bar-size", "1 day", "--history", "3y"]
CLIENT_ID = 360  # of the Dagster runs
LINEAGE = ["request_id", "fetched_at", "source"]


@pytest.fixture
def home(seeded_home: Path, gateway, monkeypatch) -> Path:
    monkeypatch.setenv("IB_PORT", str(gateway.port))
    return seeded_home


def ibw(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, " ".join(capsys.readouterr().out.split())  # rich wraps long lines


def daily(home: Path, con_id: int) -> Target:
    [found] = [t for t in targets(home, [BarSpec("1 day", 365 * 3)]) if t.con_id == con_id]
    return found


def year_file(home: Path, target: Target, year: int) -> Path:
    return (
        layout.partition_dir(home, "bars", bar_store.partition(target.key, year)) / "part.parquet"
    )


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def complete_in(home: Path, target: Target, year: int) -> list[date]:
    held = ledger.read_series(home, target.key)
    done = held.filter(
        (pl.col("status") == "complete") & (pl.col("session_date").dt.year() == year)
    )
    return done["session_date"].to_list()


def backfilled(home: Path, capsys) -> dict[int, pl.DataFrame]:
    """AAPL and MSFT, three years of daily bars, as a clean run leaves them."""
    code, out = ibw(capsys, "backfill", "AAPL", "MSFT", "--home", str(home), *DAILY)
    assert code == 0, out
    return {c: bar_store.read_series(home, daily(home, c).key).drop(LINEAGE) for c in (AAPL, MSFT)}


def test_verify_sets_a_truncated_file_aside_and_the_backfill_refills_exactly_it(home, capsys):
    clean = backfilled(home, capsys)
    assert ibw(capsys, "verify", "--home", str(home))[0] == 0
    aapl = daily(home, AAPL)
    damaged, lost = year_file(home, aapl, 2023), complete_in(home, aapl, 2023)
    truncate(damaged)

    code, out = ibw(capsys, "verify", "--home", str(home))
    assert code == 1
    assert f"Unreadable: {damaged} (" in out and "parquet" in out.lower()
    assert f"{len(lost)} sessions called complete have no bars ({lost[0]} .. {lost[-1]})" in out
    assert not damaged.exists() and complete_in(home, aapl, 2023) == []
    [record] = (home / "unreadable").rglob("*.json")
    assert json.loads(record.read_text())["path"] == str(damaged)
    assert record.with_suffix("").is_file()  # the file itself, beside its record

    code, out = ibw(capsys, "backfill", "AAPL", "MSFT", "--home", str(home), *DAILY)
    assert code == 0 and f"{len(lost)} sessions complete" in out, out
    assert complete_in(home, aapl, 2023) == lost
    for con_id, bars in clean.items():
        assert bar_store.read_series(home, daily(home, con_id).key).drop(LINEAGE).equals(bars)
    assert ibw(capsys, "verify", "--home", str(home))[0] == 0


def test_one_truncated_file_never_takes_down_the_queries_of_the_rest(home, capsys):
    clean = backfilled(home, capsys)
    truncate(year_file(home, daily(home, MSFT), 2022))
    refresh_catalog(home)
    sql = f"SELECT count(*) AS n FROM bars WHERE con_id = {AAPL}"
    code, out = ibw(capsys, "query", sql, "--home", str(home))
    assert code == 0 and f" {clean[AAPL].height} " in out, out
    # the refresh moved the file aside, so the next backfill sees its year missing
    code, out = ibw(capsys, "backfill", "MSFT", "--home", str(home), *DAILY)
    assert code == 0 and "Backfilled 1 series" in out, out
    assert bar_store.read_series(home, daily(home, MSFT).key).drop(LINEAGE).equals(clean[MSFT])


def test_a_deleted_year_is_a_gap_again_for_plan_backfill_and_the_sensor(home, capsys):
    from engines.bar_series import Holdings, estimate
    from ibkr.durations import DurationTable
    from tests.kit.gateway import NOW

    clean = backfilled(home, capsys)
    aapl = daily(home, AAPL)
    lost = complete_in(home, aapl, 2023)
    year_file(home, aapl, 2023).unlink()

    code, out = ibw(capsys, "plan", "AAPL", "--home", str(home), *DAILY)
    assert code == 0 and "every expected session is held" not in out, out
    assert estimate(aapl, Holdings.read(home), NOW, DurationTable.default()).missing == len(lost)
    code, out = ibw(capsys, "backfill", "AAPL", "--home", str(home), *DAILY)
    assert code == 0 and f"{len(lost)} sessions complete" in out, out
    assert bar_store.read_series(home, aapl.key).drop(LINEAGE).equals(clean[AAPL])


def test_verify_of_a_home_without_a_warehouse_says_so(tmp_path, capsys):
    code, out = ibw(capsys, "verify", "--home", str(tmp_path / "nothing"))
    assert code == 1 and "no warehouse at" in out and "$IBW_HOME" in out


def test_a_corrupt_ledger_or_bars_file_is_named_in_one_sentence(home, capsys):
    backfilled(home, capsys)
    aapl = daily(home, AAPL)
    coverage = layout.partition_dir(home, "coverage", aapl.key.partition()) / "part.parquet"
    coverage.write_bytes(b"not parquet at all")
    code, out = ibw(capsys, "plan", "AAPL", "--home", str(home), *DAILY)
    assert code == 1 and f"{coverage}: not a readable Parquet file" in out, out
    assert "ibw verify" in out and "Traceback" not in out
    with pytest.raises(UnreadableFile, match="ibw verify") as raised:
        ledger.read_all(home)  # the sensor's one scan names the file too
    assert str(coverage) in str(raised.value)

    bars_file = year_file(home, aapl, 2022)
    truncate(bars_file)
    with pytest.raises(UnreadableFile, match="ibw verify") as raised:
        bar_store.read_year(home, aapl.key, 2022)
    assert str(bars_file) in str(raised.value)


@pytest.mark.slow
def test_a_run_of_the_partition_refills_a_deleted_year_and_its_lake_check_passes(
    gateway, home, tmp_path, capsys
):
    from assets import bars
    from assets.bars.partitions import contract_partition_key, range_tags

    universe = write_universe(tmp_path, bars=[{"bar_size": "1 day", "history": "3y"}])
    specs = UniverseResource(path=str(universe)).load().bars
    code, out = ibw(capsys, "backfill", "AAPL", "--home", str(home), "--universe", str(universe))
    assert code == 0, out
    [aapl] = [t for t in targets(home, specs) if t.con_id == AAPL]  # the partition damaged
    damaged = year_file(home, aapl, 2023)
    lost = complete_in(home, aapl, 2023)
    damaged.unlink()
    defs = dg.Definitions.merge(
        bars.definitions(),
        dg.Definitions(resources=dagster_resources(gateway, home, universe, CLIENT_ID)),
    )
    key = contract_partition_key(aapl.symbol, AAPL)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("bar_contracts", [key])
        job = defs.resolve_job_def("bars_job")
        result = job.execute_in_process(instance=instance, tags=range_tags([key]))
    [materialization] = result.asset_materializations_for_node("bars")
    assert materialization.metadata["sessions_complete"].value == len(lost)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["bars_in_lake"].passed and damaged.is_file()
    assert checks["bars_in_lake"].metadata["sessions_lost"].value == 0


def test_the_backfill_sets_a_truncated_year_aside_itself_and_refills_it(home, capsys):
    clean = backfilled(home, capsys)
    aapl = daily(home, AAPL)
    damaged, lost = year_file(home, aapl, 2022), complete_in(home, aapl, 2022)
    truncate(damaged)
    code, out = ibw(capsys, "backfill", "AAPL", "--home", str(home), *DAILY)
    assert code == 0 and f"{len(lost)} sessions complete" in out, out
    assert bar_store.read_series(home, aapl.key).drop(LINEAGE).equals(clean[AAPL])
    [record] = (home / "unreadable").rglob("*.json")
    assert json.loads(record.read_text())["path"] == str(damaged)

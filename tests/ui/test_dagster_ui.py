"""The Dagster UI as a user meets it, in a real headless browser against `ibw dev` on the
embedded gateway (issue 14): the asset graph, readable and truthful `bars` partitions, a click on
"Materialize" that does not wait behind the sensor's backfill, and per-partition checks with
numbers. Conditions are awaited through Dagster's GraphQL API; the browser sees and clicks.

The tests run in file order against one `ibw dev`: the click happens while the sensor's backfill
is still going, the partitions and checks are judged once it has gone through."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from assets.bars.asset import CHECKS
from tests.kit.waiting import poll_until
from tests.ui.dagster_api import UNFINISHED, check_executions

pytestmark = pytest.mark.slow  # `ibw dev`, a browser and a backfill: minutes

READABLE = re.compile(r"^[A-Z][A-Z0-9.]*\.\d+$")  # the agreed key: <symbol>.<conId>
CLICKED = "AAPL"  # the contract whose partition the user materializes by hand
BACKFILL = 900.0  # seconds the sensor's backfill of the small universe may take, at most
ASSETS = ["contracts", "option_chains", "bars", "account_summary", "positions", "live_bars"]


def test_the_asset_graph_shows_every_domain(dev, page, screenshot):
    page.goto(f"{dev.url}/asset-groups")
    groups = page.get_by_role("img", name="asset_group")
    groups.first.wait_for()
    toggles = page.get_by_role("img", name="arrow_drop_down")  # the groups' first, in order
    for i in reversed(range(groups.count())):  # from the last: opening one moves those below
        toggles.nth(i).click()
    for asset in [*ASSETS, "live_orders", "live_fills", "live_compaction"]:
        page.get_by_title(asset, exact=True).first.wait_for()
    screenshot("lineage")


def test_a_click_on_materialize_starts_while_the_backfill_runs(dev, page, screenshot):
    backfill = dev.api.wait_for_runs(
        "a run of the sensor's backfill", 300, UNFINISHED, **{"ibw/backfill": "bars"}
    )
    assert all(r["tags"].get("dagster/priority") == "-1" for r in backfill), backfill
    contract = _partition_of(dev, CLICKED)
    page.goto(f"{dev.url}/assets/bars?view=partitions")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize bars")
    dialog.get_by_text("Select a partition or create one").first.click()
    page.get_by_placeholder("Filter partitions").fill(contract)
    page.get_by_role("menuitem").filter(has_text=contract).first.click()
    dialog.get_by_text("Launch runs to materialize bars").click()  # closes the list
    screenshot("materialize")
    dialog.get_by_role("button", name="Launch 1 run").click()

    def clicked_run_started() -> bool:
        mine = [r for r in dev.api.runs() if _is_click(r, contract)]
        return bool(mine) and mine[0]["status"] in ("STARTED", "SUCCESS")

    poll_until(clicked_run_started, "the clicked run to start", timeout=300, every=0.5)
    still_queued_or_running = dev.api.runs(UNFINISHED, **{"ibw/backfill": "bars"})
    assert still_queued_or_running, "the clicked run only started once the backfill was done"
    (mine,) = [r for r in dev.api.runs() if _is_click(r, contract)][:1]
    poll_until(
        lambda: dev.api.run_status(mine["runId"]) in ("SUCCESS", "FAILURE"),
        "the clicked run to finish",
        timeout=300,
        every=0.5,
    )
    assert dev.api.run_status(mine["runId"]) == "SUCCESS"


def test_the_partitions_are_readable_and_none_is_missing_for_good(dev, page, screenshot):
    contracts = dev.api.partitions("bars")["keys"]
    assert contracts and all(READABLE.match(k) for k in contracts), contracts

    def backfill_done() -> bool:
        stats = dev.api.partitions("bars")["stats"]
        queued = dev.api.runs(UNFINISHED, **{"ibw/backfill": "bars"})
        return not queued and stats["numMaterialized"] == stats["numPartitions"]

    poll_until(backfill_done, "the sensor's backfill to fill every partition", BACKFILL, every=2)
    page.goto(f"{dev.url}/assets/bars?view=partitions")
    page.get_by_text(_partition_of(dev, CLICKED)).first.wait_for()
    page.get_by_text("Missing (0)").wait_for()
    screenshot("partitions")


def test_the_checks_page_shows_per_partition_results_with_numbers(dev, page, screenshot):
    evaluations = check_executions(dev.api, "bars", "bars_no_gaps")
    partitions = {e["partition"] for e in evaluations}
    assert len(partitions) > 1 and all(p and "." in p for p in partitions), evaluations
    assert all(e["numbers"] for e in evaluations), evaluations
    page.goto(f"{dev.url}/assets/bars?view=checks")
    page.get_by_text("bars_no_gaps").first.click()
    for name in CHECKS:  # each check's entry in the list sums up its partitions' results
        entry = page.locator("div").filter(has_text=re.compile(rf"^\s*({name}\s*)+Succeeded\s*$"))
        expect(entry.first).to_be_visible()
    page.get_by_text("Execution history").click()
    page.get_by_text(_partition_of(dev, CLICKED)).first.wait_for()
    screenshot("checks")


def _partition_of(dev, symbol: str) -> str:
    contracts = dev.api.partitions("bars")["keys"]
    found = [k for k in contracts if k.startswith(f"{symbol}.")]
    assert found, f"no partition key for {symbol} among {contracts}"
    return found[0]


def _is_click(run: dict, contract: str) -> bool:
    """A run launched from the UI for a partition of `contract`."""
    tags = run["tags"]
    return tags.get("dagster/from_ui") == "true" and tags.get("dagster/partition") == contract

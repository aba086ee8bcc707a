"""The nightly account snapshot against seeded gateway scenarios, into real Parquet: every dataset
equals the gateway's state, a rerun replaces its day, a restart mid-run ends in a whole snapshot,
late commissions and execId corrections end as one fill with its commission."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.account.assets import account_snapshot
from assets.resources import IBResource, SnapshotResource, WarehouseResource
from assets.trading_days import instance_with_days
from cli.main import main
from engines.snapshot import snapshot_logins, store_snapshot, take_snapshot
from ibfacts.resets import ib_day
from ibkr.connection import ConnectionSettings
from ibkr.gateways import GatewaysError, parse_gateways
from ibsim.accounts.book import Book
from ibsim.server.table import HANDLERS
from tests.kit.gateway import NOW
from tests.kit.processes import IBW, ROOT, free_port
from tests.kit.scenarios import FA_MASTER, SINGLE, SUBS
from warehouse.parquet import read_dataset

DAY = NOW.date()


def snapshot(gw, home: Path, **kwargs):
    settings = ConnectionSettings("127.0.0.1", gw.port, 500, 10)
    snap, now, accounts, attempts = take_snapshot(settings, "test", **kwargs)
    return store_snapshot(home, ib_day(now), snap, accounts, "test", attempts)


def table(home: Path, dataset: str) -> pl.DataFrame:
    return read_dataset(home, dataset).filter(pl.col("snapshot_date") == DAY)


@pytest.fixture(params=["single", "fa"])
def seeded_gateway(request, make_gateway):
    """Each scenario in turn: the single paper account, and the FA master."""
    return make_gateway(book=Book.from_scenario(SINGLE if request.param == "single" else FA_MASTER))


def test_the_snapshot_equals_the_gateway_state(seeded_gateway, tmp_path):
    stored = snapshot(seeded_gateway, tmp_path)
    book = seeded_gateway.gateway.book
    accounts = tuple(a.id for a in book.accounts)
    assert stored.accounts == accounts and stored.day == DAY and stored.quarantined == 0

    positions = table(tmp_path, "positions").select("account", "con_id", "quantity", "avg_cost")
    assert sorted(positions.rows()) == sorted(
        (p.account, p.con_id, float(p.quantity), p.avg_cost) for p in book.positions
    )
    portfolio = table(tmp_path, "portfolio")
    assert sorted(portfolio.select("account", "con_id", "quantity").rows()) == sorted(
        (p.account, p.con_id, float(p.quantity)) for p in book.positions
    )
    values = table(tmp_path, "account_values").filter(pl.col("key") == "CashBalance")
    for account in book.accounts:
        for currency, amount in account.cash.items():
            [(value,)] = (
                values.filter((pl.col("account") == account.id) & (pl.col("currency") == currency))
                .select("value")
                .rows()
            )
            assert float(value) == amount
    summary = table(tmp_path, "account_summary")
    assert set(summary["account"]) == set(accounts)
    assert {"NetLiquidation", "TotalCashValue", "BuyingPower"} <= set(summary["tag"])
    open_orders = table(tmp_path, "open_orders")
    assert sorted(open_orders.select("perm_id", "order_ref", "quantity").rows()) == sorted(
        (o.perm_id, o.order_ref or None, float(o.quantity)) for o in book.open_orders
    )
    completed = table(tmp_path, "completed_orders")
    assert sorted(completed.select("perm_id", "status").rows()) == sorted(
        (o.perm_id, o.status) for o in book.completed_orders
    )
    if not book.master:
        assert table(tmp_path, "fa_groups").is_empty()
        return

    groups = table(tmp_path, "fa_groups").select("group_name", "method", "account").rows()
    assert sorted(groups) == sorted((g.name, g.method, a) for g in book.groups for a in g.accounts)
    profiles = table(tmp_path, "fa_profiles").select("profile", "account", "amount").rows()
    assert sorted(profiles) == sorted(
        (p.name, a, x) for p in book.profiles for a, x in p.allocations.items()
    )
    aliases = dict(table(tmp_path, "fa_aliases").select("account", "alias").rows())
    assert aliases == dict(book.aliases)

    fa_order = open_orders.filter(pl.col("order_ref") == "ibw-fa").row(0, named=True)
    assert (fa_order["fa_group"], fa_order["fa_method"]) == ("Everyone", "NetLiq")


def test_a_late_commission_and_a_correction_end_as_one_fill_each_with_its_commission(
    fa_gateway, tmp_path
):
    snapshot(fa_gateway, tmp_path)
    fills = table(tmp_path, "executions")
    expected = {
        e.exec_id: e.commission for e in fa_gateway.gateway.book.executions if not e.corrected_by
    }
    assert dict(fills.select("exec_id", "commission").rows()) == expected  # the .02, not the .01
    assert fills["commission"].null_count() == 0 and (fills["commission"] > 0).all()
    corrected = fills.filter(pl.col("exec_id").str.ends_with(".02")).row(0, named=True)
    assert corrected["price"] == 452.5 and fills.height == 3
    commissions = table(tmp_path, "commissions")
    assert set(commissions["exec_id"]) == set(expected)


def test_a_rerun_replaces_the_day(fa_gateway, tmp_path):
    first = snapshot(fa_gateway, tmp_path)
    second = snapshot(fa_gateway, tmp_path)
    assert first.rows == second.rows
    for dataset, count in second.rows.items():
        assert table(tmp_path, dataset).height == count, dataset


def test_a_restart_in_the_middle_ends_in_a_whole_snapshot(fa_gateway, tmp_path, monkeypatch):
    executions = HANDLERS[7]
    restarted = []

    def restart_once(session, msg):
        if not restarted:  # the gateway restarts just as the fills are asked for
            restarted.append(asyncio.ensure_future(fa_gateway.gateway.restart(0.5)))
            return None
        return executions(session, msg)

    monkeypatch.setitem(HANDLERS, 7, restart_once)
    stored = snapshot(fa_gateway, tmp_path, deadline=60)
    assert restarted and stored.attempts >= 2
    clean = tmp_path / "clean"
    monkeypatch.setitem(HANDLERS, 7, executions)
    snapshot(fa_gateway, clean)
    for dataset in ("positions", "executions", "open_orders", "fa_groups"):
        lineage = ["request_id", "fetched_at", "source"]
        got, want = table(tmp_path, dataset).drop(lineage), table(clean, dataset).drop(lineage)
        assert got.sort(pl.all()).equals(want.sort(pl.all())), dataset


def test_a_gateway_that_stays_down_fails_in_one_sentence(tmp_path):
    settings = ConnectionSettings("127.0.0.1", 1, 500, 2)  # nothing listens there
    with pytest.raises(Exception, match=r"still unavailable after 3 s .* attempts"):
        take_snapshot(settings, "down", deadline=3, sleep=lambda s: None)


def test_the_single_account_through_dagster_and_the_cli(
    make_gateway, tmp_path, monkeypatch, capsys
):
    gw = make_gateway(book=Book.from_scenario(SINGLE))
    resources = {
        "ib": IBResource(port=gw.port, client_id=520),
        "warehouse": WarehouseResource(home=str(tmp_path)),
        "snapshot": SnapshotResource(),
    }
    with instance_with_days(str(DAY)) as instance:
        result = dg.materialize(
            [account_snapshot], resources=resources, partition_key=str(DAY), instance=instance
        )
    assert result.success
    materializations = [
        e.event_specific_data.materialization for e in result.get_asset_materialization_events()
    ]
    counts = {
        m.asset_key.to_user_string(): m.metadata["dagster/row_count"].value
        for m in materializations
    }
    assert counts["positions"] == 2 and counts["executions"] == 1 and counts["fa_groups"] == 0
    monkeypatch.setenv("IB_PORT", str(gw.port))
    assert main(["snapshot", "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"Snapshot of {DAY} for 1 account(s) (DU123456)" in out
    assert main(["snapshot", "--home", str(tmp_path), "--date", "2024-07-09"]) == 1
    assert "for its today (2024-07-10) only" in capsys.readouterr().out


def test_inside_ibs_reset_window_the_snapshot_waits_for_its_end(make_gateway, tmp_path):
    from datetime import UTC, datetime

    from ibsim.clock import ManualClock

    clock = ManualClock(datetime(2024, 7, 10, 4, 30, tzinfo=UTC))  # 00:30 New York
    gw = make_gateway(clock=clock, book=Book.from_scenario(SINGLE))
    waited = []

    def sleep(seconds: float) -> None:  # the gateway's day moves on while we wait
        waited.append(seconds)
        clock.advance(seconds)

    said = []
    stored = snapshot(
        gw, tmp_path, deadline=7200, sleep=sleep, on_wait=said.append, clock=lambda: 0.0
    )
    assert waited == [75 * 60] and stored.attempts == 2  # until 01:45, then the snapshot
    assert said == [
        "Waiting out IB's daily reset window, which ends at 01:45 EDT by IB's clock: IB may drop "
        "every connection until then. Trying again in 4500 s; 7200 s left before the snapshot's "
        "deadline."
    ]
    assert stored.rows["positions"] == 2


def test_a_reset_window_that_outlasts_the_deadline_is_one_sentence(make_gateway):
    from datetime import UTC, datetime

    from ibsim.clock import ManualClock

    gw = make_gateway(clock=ManualClock(datetime(2024, 7, 10, 4, 30, tzinfo=UTC)))
    with pytest.raises(Exception, match="reset window is on and ends after the snapshot's"):
        snapshot(gw, Path("/nonexistent"), deadline=60, sleep=lambda s: None)


def test_valuations_in_the_warehouse_equal_the_gateways_to_the_cent(seeded_gateway, tmp_path):
    from ibsim.accounts import valuation

    snapshot(seeded_gateway, tmp_path)
    book, catalog = seeded_gateway.gateway.book, seeded_gateway.gateway.catalog
    accounts = [a.id for a in book.accounts]
    portfolio = table(tmp_path, "portfolio")
    expected = {
        (v.account, v.con_id): (v.market_price, v.market_value, v.unrealized_pnl, v.realized_pnl)
        for v in valuation.portfolio_rows(book, catalog, NOW)
    }
    got = portfolio.select(
        "account", "con_id", "market_price", "market_value", "unrealized_pnl", "realized_pnl"
    ).rows()
    assert {(a, c): tuple(rest) for a, c, *rest in got} == expected

    values = table(tmp_path, "account_values")
    for account in accounts:
        mine = values.filter(pl.col("account") == account).select("key", "value", "currency")
        want = valuation.account_values(book, catalog, NOW, account)
        assert sorted(mine.rows()) == sorted((v.key, v.value, v.currency or None) for v in want)

    summary = table(tmp_path, "account_summary")
    tags = ",".join(sorted(set(summary["tag"]))) + ",$LEDGER:ALL"  # as ib_async asks
    want = valuation.summary(book, catalog, NOW, accounts, tags)
    assert sorted(summary.select("account", "tag", "value", "currency").rows()) == sorted(
        (v.account, v.tag, v.value, v.currency or None) for v in want
    )

    pnl = table(tmp_path, "pnl")
    for account in accounts:
        row = pnl.filter((pl.col("account") == account) & pl.col("con_id").is_null()).row(
            0, named=True
        )
        total = valuation.pnl(book, catalog, NOW, [account])
        assert (row["daily_pnl"], row["unrealized_pnl"], row["realized_pnl"]) == tuple(total)
    for position in book.positions:
        row = pnl.filter(
            (pl.col("account") == position.account) & (pl.col("con_id") == position.con_id)
        ).row(0, named=True)
        single = valuation.pnl_single(book, catalog, NOW, [position.account], position.con_id)
        assert (row["position"], row["daily_pnl"], row["value"]) == (
            single.position,
            single.daily,
            single.value,
        )


def test_a_commission_ib_has_not_sent_is_null_and_the_next_run_fills_it_in(make_gateway, tmp_path):
    import copy

    scenario = copy.deepcopy(SINGLE)
    # IB holds it back from the first two answers: ib_async's connect asks once, the snapshot once
    scenario["executions"][0]["commission_delay"] = -2
    gw = make_gateway(book=Book.from_scenario(scenario))
    snapshot(gw, tmp_path, deadline=30)
    [first] = table(tmp_path, "executions").select("commission").rows()
    assert first == (None,) and table(tmp_path, "commissions").is_empty()
    snapshot(gw, tmp_path, deadline=30)  # the rerun of the day
    [second] = table(tmp_path, "executions").select("commission").rows()
    assert second == (1.0,) and table(tmp_path, "commissions").height == 1


def test_the_days_fills_run_alone_and_touch_no_other_dataset(fa_gateway, tmp_path):
    from assets.account.schedules import FILLS
    from ibkr.snapshot import DATASETS as ASKED
    from warehouse.schemas import SNAPSHOT_SCHEMAS

    assert set(ASKED) == set(SNAPSHOT_SCHEMAS)  # what IB is asked for is what is stored
    resources = {
        "ib": IBResource(port=fa_gateway.port, client_id=530),
        "warehouse": WarehouseResource(home=str(tmp_path)),
        "snapshot": SnapshotResource(),
    }
    with instance_with_days(str(DAY)) as instance:
        result = dg.materialize(
            [account_snapshot], resources=resources, partition_key=str(DAY),
            selection=list(FILLS), instance=instance,
        )  # fmt: skip
    assert result.success
    landed = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert landed == set(FILLS)
    assert table(tmp_path, "executions").height == 3
    assert read_dataset(tmp_path, "positions").is_empty()  # not asked for, not written


# ------------------------------------------------------------------ waits that say why
def run_ibw_snapshot(port: int, home: Path, deadline: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "IB_PORT": str(port), "COLUMNS": "300"}
    return subprocess.run(
        [*IBW, "snapshot", "--home", str(home), "--deadline", deadline],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.slow
def test_a_gateway_that_is_down_says_why_on_every_retry(tmp_path):
    port = free_port()  # nothing listens there
    result = run_ibw_snapshot(port, tmp_path, "4")
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    waits = [line for line in lines if line.startswith("Waiting for the gateway")]
    assert len(waits) >= 2 and len(lines) == len(waits) + 1
    assert re.fullmatch(
        rf"Waiting for the gateway at 127\.0\.0\.1:{port} \(attempt 1\): Nothing is listening at "
        rf"127\.0\.0\.1:{port}: start a gateway .*\. Trying again in 1 s; \d s left before the "
        r"snapshot's deadline\.",
        waits[0],
    )
    assert lines[-1].startswith("ibw snapshot: The gateway was still unavailable after 4 s")


@pytest.mark.slow
def test_a_silent_gateway_says_why_on_every_retry(tmp_path):
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        result = run_ibw_snapshot(silent.getsockname()[1], tmp_path, "4")
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert "did not finish the API handshake within 2 s" in lines[0]
    assert "Trying again in 1 s" in lines[0] and lines[0].startswith("Waiting for the gateway")
    assert lines[-1].startswith("ibw snapshot: The gateway was still unavailable after 4 s")


@pytest.mark.slow
@pytest.mark.parametrize("deadline", ["0", "86401", "soon", "nan"])
def test_the_deadline_is_bounded(tmp_path, deadline):
    result = run_ibw_snapshot(free_port(), tmp_path, deadline)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not a deadline; give seconds from 1 to 86400" in result.stderr


def test_each_account_is_taken_from_the_login_that_owns_it(make_gateway, tmp_path):
    """Two trading logins, each owning its accounts: one snapshot holds every account once,
    each from its own login, with both logins in its lineage."""
    single = make_gateway(book=Book.from_scenario(SINGLE))
    master = make_gateway(book=Book.from_scenario(FA_MASTER))
    subs = list(SUBS)
    logins = parse_gateways({"gateways": [
        {"name": "one", "host": "127.0.0.1", "port": single.port, "role": "both",
         "accounts": ["DU123456"]},
        {"name": "fa", "host": "127.0.0.1", "port": master.port, "role": "trading",
         "accounts": subs},
    ]}, "gateways.yml")  # fmt: skip
    taken = snapshot_logins(logins, "test-logins", region="none", deadline=60)
    alone = {
        name: take_snapshot(ConnectionSettings(port=gw.port), f"alone-{name}", region="none")[0]
        for name, gw in (("one", single), ("fa", master))
    }
    assert set(taken.accounts) == {"DU123456", *subs}
    assert taken.source == f"ib://127.0.0.1:{single.port},ib://127.0.0.1:{master.port}"
    for dataset in ("positions", "executions", "commissions", "fa_groups"):
        rows = taken.snap.rows(dataset)
        expected = [
            r for r in alone["one"].rows(dataset) if r.get("account", "DU123456") == "DU123456"
        ] + [r for r in alone["fa"].rows(dataset) if r.get("account", subs[0]) in subs]
        assert len(rows) == len(expected), dataset
    assert {r["account"] for r in taken.snap.rows("positions")} == {"DU123456", *subs}
    assert len(taken.snap.rows("commissions")) == len(taken.snap.rows("executions")) > 0


def test_without_a_login_that_owns_accounts_the_snapshot_says_so():
    logins = parse_gateways(
        {"gateways": [{"name": "data", "host": "127.0.0.1", "port": 1, "role": "data"}]}, "g.yml"
    )
    with pytest.raises(GatewaysError) as failure:
        snapshot_logins(logins, "none", region="none")
    assert failure.value.sentence == (
        "No IB login has role trading or both, so no login owns an account: give the login "
        "that holds the accounts role trading or both."
    )

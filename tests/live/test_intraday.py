"""The intraday account datasets: after fills, price moves and a gateway restart, the latest row
of every key in `live_positions`, `live_pnl` and `live_account_values` equals what the gateway
holds, for an FA master's sub-accounts and for the master's sums across them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
import pytest
from ib_async import util

from ibkr.connection import ConnectionSettings
from ibsim.accounts import valuation
from ibsim.accounts.book import Book
from ibsim.server.gateway import GatewayThread
from live.config import LiveConfig
from live.intraday import Exposure
from live.journal import Journal
from live.service import LiveService
from tests.kit.live import buy
from tests.kit.scenarios import FA_MASTER, SUBS
from tests.kit.waiting import until
from warehouse import live_streams
from warehouse.live_schemas import ACCOUNT_VALUES, PNL, POSITIONS

WAIT = 30.0
CLIENT_ID = 44
CONFIG = LiveConfig.parse({"streams": [{"symbol": "AAPL", "ticks": True}], "flush_every": 0.2})
MASTER = FA_MASTER["master"]
CENT = 0.011  # the master's sums add the sub-accounts' rounded cents


def latest(home: Path, dataset: str, keys: list[str]) -> dict[tuple, dict]:
    """The newest row of each key, as an analyst reads the dataset."""
    frames = [live_streams.read_day(home, dataset, day) for day in live_streams.days(home, dataset)]
    if not frames:
        return {}
    frame = pl.concat(frames).sort("time")
    return {tuple(row[k] for k in keys): row for row in frame.iter_rows(named=True)}


def expected(gw: GatewayThread) -> dict[str, dict[tuple, tuple]]:
    """What the gateway holds now, keyed as the datasets are, valued by its own functions."""

    def read() -> dict[str, dict[tuple, tuple]]:
        book, catalog, now = gw.gateway.book, gw.gateway.catalog, gw.gateway.clock.now()
        rows = valuation.portfolio_rows(book, catalog, now, SUBS)
        positions = {(v.account, v.con_id, False): (v.quantity, v.avg_cost) for v in rows}
        pnl: dict[tuple, tuple] = {}
        for account in SUBS:
            pnl[(account, None, False)] = tuple(valuation.pnl(book, catalog, now, (account,)))
        for v in rows:
            single = valuation.pnl_single(book, catalog, now, (v.account,), v.con_id)
            assert single is not None
            pnl[(v.account, v.con_id, False)] = (*single[1:4], single.position, single.value)
        pnl[(MASTER, None, True)] = _sum(pnl[(a, None, False)] for a in SUBS)
        for con_id in {v.con_id for v in rows}:
            mine = [v for v in rows if v.con_id == con_id]
            positions[(MASTER, con_id, True)] = (sum(v.quantity for v in mine),)
            pnl[(MASTER, con_id, True)] = _sum(pnl[(v.account, con_id, False)] for v in mine)
        values = {
            (account, key, currency): (value,)
            for account in SUBS
            for key, value, currency in valuation.account_values(book, catalog, now, account)
        }
        return {POSITIONS: positions, PNL: pnl, ACCOUNT_VALUES: values}

    return gw.call(read)


def _sum(parts) -> tuple:
    return tuple(sum(column) for column in zip(*parts, strict=True))


def stored(home: Path) -> dict[str, dict[tuple, tuple]]:
    positions = latest(home, POSITIONS, ["account", "con_id", "aggregate"])
    pnl = latest(home, PNL, ["account", "con_id", "aggregate"])
    values = latest(home, ACCOUNT_VALUES, ["account", "key", "currency"])
    return {
        POSITIONS: {
            k: (r["position"],) if r["aggregate"] else (r["position"], r["avg_cost"])
            for k, r in positions.items()
        },
        PNL: {
            k: (r["daily_pnl"], r["unrealized_pnl"], r["realized_pnl"])
            + (() if r["con_id"] is None else (r["position"], r["value"]))
            for k, r in pnl.items()
        },
        ACCOUNT_VALUES: {k: (r["value"],) for k, r in values.items()},
    }


def mismatches(gw: GatewayThread, home: Path) -> list[str]:
    """Where the lake and the gateway differ (to the cent for the master's sums)."""
    want, have = expected(gw), stored(home)
    out = []
    for dataset in want:
        for key in want[dataset].keys() | have[dataset].keys():
            mine, theirs = have[dataset].get(key), want[dataset].get(key)
            if mine is None or theirs is None or mine != pytest.approx(theirs, abs=CENT):
                out.append(f"{dataset} {key}: lake {mine}, gateway {theirs}")
    return out


async def in_sync(gw: GatewayThread, home: Path, what: str) -> None:
    """Until the lake holds the gateway's state; fails with the differences."""
    try:
        await until(lambda: not mismatches(gw, home), what, WAIT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {mismatches(gw, home)[:5]}") from None


def test_the_intraday_datasets_follow_fills_price_moves_and_a_restart(
    make_gateway, seeded_home: Path
) -> None:
    gw = make_gateway(
        book=Book.from_scenario(FA_MASTER), account_update_interval=0.2, pnl_interval=0.1
    )
    service = LiveService(
        ConnectionSettings(port=gw.port, client_id=CLIENT_ID), seeded_home, CONFIG
    )
    journal = Journal.open(seeded_home)

    async def on_gateway(step) -> None:
        task = gw.call(asyncio.ensure_future, step)
        await until(task.done, "the gateway finishes the step", WAIT)
        task.result()

    async def filled(key: str) -> None:
        await until(lambda: journal.get(key).state == "done" and journal.settled(), key, WAIT)

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.ensure_future(service.run(stop))
        try:
            await in_sync(gw, seeded_home, "the lake holds the opening state")

            # Fills: an FA allocation across the sub-accounts, and one account's new contract.
            journal.submit(
                buy("fa", 30, account="", fa_group="Everyone", fa_method="EqualQuantity")
            )
            await filled("fa")
            gw.call(gw.gateway.clock.advance, 1)  # the gateway's P&L goes out every second
            await in_sync(gw, seeded_home, "the lake holds the allocation's fills")

            # The market moves: P&L, values and account values follow.
            before = stored(seeded_home)[PNL]
            gw.call(gw.gateway.clock.advance, 1_800)
            await in_sync(gw, seeded_home, "the lake holds the moved market")
            assert stored(seeded_home)[PNL] != before

            # 1100 then 1101: IB dropped the account subscriptions, the service makes them again.
            gw.call(gw.gateway.connectivity_lost)
            await until(lambda: not service.trading.up, "the link is down", WAIT)
            gw.call(gw.gateway.connectivity_restored, False)
            await until(lambda: service.trading.up, "the link is back", WAIT)
            gw.call(gw.gateway.clock.advance, 900)
            await in_sync(gw, seeded_home, "the lake holds the market after 1101")

            # A restart: the service reconnects and subscribes again, and the market that moved
            # meanwhile reaches the lake.
            await on_gateway(gw.gateway.go_down(0.0))
            gw.call(gw.gateway.clock.advance, 600)
            await on_gateway(gw.gateway.come_up())
            await until(lambda: service.intraday.health()["accounts"] == len(SUBS), "resubscribed")
            gw.call(gw.gateway.clock.advance, 1)
            await in_sync(gw, seeded_home, "the lake holds the state after the restart")

            # What the risk guard reads: the master's sums, as the lake has them.
            master = service.intraday.exposure(MASTER)
            assert isinstance(master, Exposure) and master.daily_pnl is not None
            want = expected(gw)[POSITIONS]
            assert master.positions == {k[1]: v[0] for k, v in want.items() if k[0] == MASTER}
        finally:
            stop.set()
            await asyncio.wait_for(running, WAIT)

        health = service.last_health["intraday"]
        assert health["rows_written"] > 0 and health["max_lag_seconds"] < WAIT

    try:
        util.getLoop().run_until_complete(scenario())
    finally:
        journal.close()

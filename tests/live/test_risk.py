"""Risk limits: each limit at its boundary, overrides, orders that shrink a position, hard and
soft breaches, journaled blocks; and, through the embedded gateway and unmodified ib_async, an
account past a limit that is blocked (nothing new reaches the gateway) and a hard breach that
cancels every open order there."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from ib_async import IB, util

from ibkr.connection import ConnectionSettings
from ibsim.accounts import valuation
from ibsim.accounts.book import Book
from live.api import unblock
from live.config import LiveConfig, LiveConfigError
from live.intents import OrderIntent
from live.intraday import IntradayAccounts
from live.journal import Journal, journal_path
from live.risk import Breach, Exposure, RiskGuard, RiskLimits, breaches, intent_refusal
from live.service import LiveService
from tests.kit.live import AAPL, at_gateway, buy, manager, order_command, pump_until
from tests.kit.scenarios import ESU4, SINGLE
from tests.kit.waiting import ib_until, until

ACCOUNT = "DU123456"


def exposure(
    pnl: float | None = None, account: str = ACCOUNT, **held: tuple[float, float]
) -> Exposure:
    """Positions as name=(quantity, value); the names are conIds 1, 2, ... in order."""
    items = list(held.values())
    return Exposure(
        account,
        pnl,
        {i + 1: q for i, (q, _) in enumerate(items)},
        {i + 1: v for i, (_, v) in enumerate(items)},
    )


def names(limits: RiskLimits, figures: Exposure) -> list[tuple[str, bool]]:
    return [(b.limit, b.hard) for b in breaches(limits, figures)]


# ---- the live check, at each boundary -----------------------------------------------------


def test_the_daily_loss_breaches_at_minus_the_limit_and_is_hard_by_default() -> None:
    limits = RiskLimits(daily_loss=1_000)
    assert names(limits, exposure(-999.99)) == []
    assert names(limits, exposure(None)) == []  # not known yet: nothing to judge
    assert names(limits, exposure(-1_000)) == [("daily_loss", True)]
    (breach,) = breaches(limits, exposure(-1_500.5))
    assert breach.sentence == (
        "account DU123456: its daily P&L -1,500.50 is at or below the loss limit of -1,000.00; "
        "reduce the account's risk or raise daily_loss in the live config's risk section, then "
        "lift the block with `ibw order unblock DU123456 --reason ...`."
    )


@pytest.mark.parametrize(
    ("limits", "within", "past", "limit"),
    [
        (RiskLimits(max_position=100), {"a": (-100, 1), "b": (5, 1)}, {"a": (-100.5, 1)},
         "max_position"),
        (RiskLimits(max_gross=1_000), {"a": (1, 600), "b": (-1, -400)}, {"a": (1, 1_000.01)},
         "max_gross"),
        (RiskLimits(max_net=1_000), {"a": (1, 1_500), "b": (-1, -500)},
         {"a": (1, -800), "b": (-1, -200.01)}, "max_net"),
    ],
)  # fmt: skip
def test_position_and_exposure_limits_breach_just_past_the_limit(
    limits: RiskLimits, within: dict, past: dict, limit: str
) -> None:
    assert names(limits, exposure(**within)) == []
    assert names(limits, exposure(**past)) == [(limit, False)]
    assert f"raise {limit}" in breaches(limits, exposure(**past))[0].sentence


def test_hard_names_the_limits_that_cancel_every_order() -> None:
    limits = RiskLimits(daily_loss=10, max_gross=100, hard=frozenset({"max_gross"}))
    assert names(limits, exposure(-10, a=(1, 101))) == [("daily_loss", False), ("max_gross", True)]


def test_an_account_override_replaces_the_limits_for_that_account_only() -> None:
    config = LiveConfig.parse(
        yaml.safe_load(
            "streams: [{symbol: AAPL, bars: true}]\n"
            "risk: {daily_loss: 100, max_position: 10, hard: [],\n"
            "       accounts: {DU999: {max_position: 50, daily_loss: null}}}"
        )
    )
    limits = config.risk
    big = {"a": (20, 1)}
    assert names(limits, exposure(-100, **big)) == [("daily_loss", False), ("max_position", False)]
    assert names(limits, exposure(-100, account="DU999", **big)) == []
    assert limits.of("DU999") == RiskLimits(max_position=50, hard=frozenset())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("risk: {daily_los: 5}", ["risk: unknown key 'daily_los'", "use only daily_loss"]),
        ("risk: {max_gross: -5}", ["max_gross must be positive", "max_gross: 500000"]),
        ("risk: {max_net: big}", ["max_net must be a positive amount"]),
        ("risk: {hard: [daily]}", ["hard must list limits among daily_loss"]),
        ("risk: {accounts: {DU1: {hard: 1, x: 2}}}", ["risk accounts DU1: unknown key 'x'"]),
        ("risk: {accounts: [DU1]}", ["accounts must map account ids"]),
    ],
)
def test_the_risk_section_is_strict(text: str, words: list[str]) -> None:
    with pytest.raises(LiveConfigError) as caught:
        LiveConfig.parse(yaml.safe_load("streams: [{symbol: AAPL, bars: true}]\n" + text))
    assert all(w in str(caught.value) for w in words), str(caught.value)


# ---- the pre-trade check ------------------------------------------------------------------


def test_an_order_is_refused_if_it_would_take_the_account_past_a_limit() -> None:
    held = exposure(a=(100, 10_000.0))  # conId 1: 100 at 100.0
    refusal = intent_refusal(RiskLimits(max_position=100), held, 1, 1, 100.0)
    assert refusal is not None and "from 100 to 101, past the limit of 100" in refusal
    assert intent_refusal(RiskLimits(max_position=150), held, 2, -150, 1.0) is None
    assert "gross exposure to 10,100.00" in intent_refusal(
        RiskLimits(max_gross=10_050), held, 2, -1, 100.0
    )
    assert intent_refusal(RiskLimits(max_gross=10_100), held, 2, -1, 100.0) is None
    assert intent_refusal(RiskLimits(max_net=10_000), held, 2, -1, 100.0) is None  # a hedge
    assert "net exposure to 10,100.00" in intent_refusal(
        RiskLimits(max_net=10_050), held, 1, 1, 100.0
    )
    assert "no price is known" in intent_refusal(RiskLimits(max_net=1), held, 1, 1, None)
    assert intent_refusal(RiskLimits(daily_loss=1), held, 1, 1_000_000, None) is None


def test_an_order_that_shrinks_a_position_passes_even_past_every_limit() -> None:
    limits = RiskLimits(max_position=10, max_gross=10, max_net=10)
    held = exposure(a=(100, 10_000.0), b=(-50, -5_000.0))
    assert intent_refusal(limits, held, 1, -30, 100.0) is None
    assert intent_refusal(limits, held, 1, -200, 100.0) is None  # to -100: no larger
    assert intent_refusal(limits, held, 2, 50, 100.0) is None  # closed
    assert intent_refusal(limits, held, 1, -201, 100.0) is not None
    assert intent_refusal(limits, held, 2, -1, 100.0) is not None


# ---- the guard and its journaled blocks ---------------------------------------------------


def test_a_breach_blocks_once_and_a_hard_one_cancels_once(journal: Journal) -> None:
    figures = {ACCOUNT: exposure(-500, a=(10, 2_000.0)), "DU2": None}
    seen: list[Breach] = []
    limits = RiskLimits(
        daily_loss=100, max_gross=1_000, hard=frozenset({"daily_loss", "max_gross"})
    )
    guard = RiskGuard(limits, figures.get, journal, on_breach=seen.append)
    journal.submit(buy("waiting"))
    new = guard.check_live([ACCOUNT, "DU2"])
    assert [b.limit for b in new] == ["daily_loss", "max_gross"] and seen == new
    assert journal.summary()["global_cancels"] == 1  # one kill switch for both hard breaches
    assert journal.get("waiting").cancel_requested
    assert guard.check_live([ACCOUNT]) == []  # the same breach is not news
    restarted = RiskGuard(limits, figures.get, journal)
    assert restarted.check_live([ACCOUNT]) == []  # the journal remembers the block
    assert journal.summary()["global_cancels"] == 1
    assert [(b["account"], b["limit"]) for b in journal.summary()["risk_blocks"]] == [
        (ACCOUNT, "daily_loss"),
        (ACCOUNT, "max_gross"),
    ]
    refusal = guard.refusal(buy("next"), 200.0)
    assert refusal.startswith("order next: account DU123456 is blocked since ")
    assert "`ibw order unblock DU123456 --reason ...`" in refusal


def test_a_lifted_block_holds_while_the_breach_lasts_and_the_next_breach_blocks(
    journal: Journal,
) -> None:
    figures = {ACCOUNT: exposure(-500)}
    guard = RiskGuard(RiskLimits(daily_loss=100, hard=frozenset()), figures.get, journal)
    assert len(guard.check_live([ACCOUNT])) == 1
    assert [b.limit for b in journal.unblock(ACCOUNT, "raised by hand")] == ["daily_loss"]
    assert guard.check_live([ACCOUNT]) == [] and guard.refusal(buy("k"), 200.0) is None
    figures[ACCOUNT] = exposure(-50)
    assert guard.check_live([ACCOUNT]) == []
    figures[ACCOUNT] = exposure(-100)
    assert [b.limit for b in guard.check_live([ACCOUNT])] == ["daily_loss"]
    assert journal.summary()["global_cancels"] == 0  # soft: nothing cancelled
    with sqlite3.connect(journal.path) as db:
        rows = db.execute("SELECT lifted_reason FROM risk_blocks ORDER BY id").fetchall()
    assert rows == [("raised by hand",), (None,)]


def test_an_order_waits_while_its_account_has_no_figures_unless_it_is_blocked(
    journal: Journal,
) -> None:
    figures: dict[str, Exposure | None] = {}
    guard = RiskGuard(RiskLimits(max_position=1), figures.get, journal)
    assert not guard.knows(ACCOUNT)
    assert guard.knows("")  # an FA allocation: IB splits it, only blocks apply
    assert RiskGuard(RiskLimits(daily_loss=1), figures.get, journal).knows(ACCOUNT)
    assert guard.refusal(buy("k"), 200.0) is None  # the order manager asks `knows` next
    journal.block(ACCOUNT, "max_position", "past it")
    assert "is blocked since" in guard.refusal(buy("k"), 200.0)  # refused, not waiting


def test_a_journal_written_before_risk_blocks_opens_with_them(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        journal.submit(buy("k1"))
    old = sqlite3.connect(journal_path(tmp_path))
    old.execute("DROP TABLE risk_blocks")
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    with Journal.open(tmp_path) as journal:
        assert journal.block(ACCOUNT, "max_net", "past it")
        assert not journal.block(ACCOUNT, "max_net", "past it again")
        assert journal.get("k1").state == "new"


# ---- through the embedded gateway ---------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """The single account's figures at the gateway, by its own valuation functions."""

    gross: float
    net: float
    daily: float


def at_the_gateway(gw) -> Figures:
    def read() -> Figures:
        book, catalog, now = gw.gateway.book, gw.gateway.catalog, gw.gateway.clock.now()
        values = [v.market_value for v in valuation.portfolio_rows(book, catalog, now, [ACCOUNT])]
        daily = valuation.pnl(book, catalog, now, [ACCOUNT]).daily
        return Figures(sum(abs(v) for v in values), sum(values), daily)

    return gw.call(read)


def watching(ib: IB, home: Path) -> IntradayAccounts:
    """The account's figures as the live service hears them (IB's positions and P&L)."""
    figures = IntradayAccounts(ib, home)
    figures.attach()
    figures.subscribe()
    ib_until(ib, lambda: figures.exposure(ACCOUNT) is not None, "the account's figures")
    return figures


def sell(key: str, quantity: float, **kw) -> OrderIntent:
    return OrderIntent(key, ACCOUNT, AAPL, "SELL", quantity, **kw)


def resting(key: str, action: str = "BUY") -> OrderIntent:
    """A limit far from the market: it rests (a sale shrinks the account's AAPL position)."""
    if action == "SELL":
        return sell(key, 5, order_type="LMT", limit_price=400.0)
    return buy(key, 5, order_type="LMT", limit_price=50.0)


def gateway_orders(gw) -> int:
    book = gw.gateway.book
    return gw.call(lambda: len(book.open_orders) + len(book.completed_orders))


# The single account holds 100 AAPL and 2 ESU4 long, and is down on the day at the gateway's
# NOW (tests.kit.scenarios.SINGLE); each limit sits just inside the account's figure.
@pytest.mark.parametrize(
    "limits_for",
    [
        lambda f: RiskLimits(max_position=99),
        lambda f: RiskLimits(max_gross=f.gross - 1),
        lambda f: RiskLimits(max_net=f.net - 1),
        lambda f: RiskLimits(daily_loss=-f.daily, hard=frozenset()),
    ],
    ids=["max_position", "max_gross", "max_net", "soft_daily_loss"],
)
def test_a_breach_blocks_the_account_until_unblocked(
    single_gateway, connect, journal: Journal, tmp_path: Path, limits_for
) -> None:
    ib = connect(single_gateway, 7)
    limits = limits_for(at_the_gateway(single_gateway))
    figures = watching(ib, tmp_path)
    guard = RiskGuard(limits, figures.exposure, journal)
    m = manager(ib, journal)
    m.risk = guard
    ib.run(m.reconcile())
    assert figures.exposure(ACCOUNT).positions == {AAPL: 100, ESU4: 2}
    journal.submit(resting("rest", "SELL"))
    pump_until(ib, m, lambda: journal.get("rest").status == "Submitted")
    journal.submit(resting("queued", "SELL"))  # journaled before the breach, not sent yet

    (breach,) = guard.check_live([ACCOUNT])
    assert (breach.account, breach.hard) == (ACCOUNT, False)
    before = gateway_orders(single_gateway)
    journal.submit(sell("later", 1))  # even a sale waits for the unblock
    pump_until(ib, m, lambda: journal.get("later").state == "refused" and journal.settled())
    for key in ("queued", "later"):
        assert "is blocked since" in journal.get(key).reason, key
        assert at_gateway(single_gateway, key) == []
    assert gateway_orders(single_gateway) == before
    assert journal.get("rest").state == "working"  # a soft breach cancels nothing
    journal.request_modify("rest", quantity=6)  # more: refused while blocked
    pump_until(ib, m, lambda: journal.get("rest").modification_state == "failed")
    assert "is blocked since" in journal.events("rest")[-1]["detail"]
    journal.request_modify("rest", limit_price=401.0)  # adds nothing: it goes out
    pump_until(ib, m, lambda: journal.get("rest").modification_state == "applied")
    (rest,) = at_gateway(single_gateway, "rest")
    assert (rest.quantity, rest.limit_price) == (5, 401.0)
    assert RiskGuard(limits, figures.exposure, journal).check_live([ACCOUNT]) == []  # a restart

    assert order_command(tmp_path, "unblock", ACCOUNT, "--reason", "checked") == 0
    assert journal.risk_blocks() == []
    journal.submit(sell("shrink", 10))
    pump_until(ib, m, lambda: journal.get("shrink").state == "done" and journal.settled())
    assert journal.get("shrink").status == "Filled"
    if limits.daily_loss is None:  # a position or exposure limit: growing is refused
        journal.submit(buy("grow", 20))
        pump_until(ib, m, lambda: journal.get("grow").state == "refused")
        assert "past" in journal.get("grow").reason and at_gateway(single_gateway, "grow") == []
    assert guard.check_live([ACCOUNT]) == []  # lifted while still past: stays lifted


def test_a_hard_breach_cancels_every_open_order_at_the_gateway_and_sends_nothing_after(
    single_gateway, connect, journal: Journal, tmp_path: Path
) -> None:
    ib = connect(single_gateway, 7)
    daily = at_the_gateway(single_gateway).daily
    assert daily < -1
    figures = watching(ib, tmp_path)
    alerts: list[Breach] = []
    limits = RiskLimits(daily_loss=-daily - 1)
    guard = RiskGuard(limits, figures.exposure, journal, on_breach=alerts.append)
    m = manager(ib, journal)
    m.risk = guard
    ib.run(m.reconcile())
    for key in ("rest1", "rest2"):
        journal.submit(resting(key))
    pump_until(ib, m, lambda: journal.get("rest2").status == "Submitted")
    journal.submit(resting("queued"))
    book = single_gateway.gateway.book
    assert single_gateway.call(lambda: len(book.open_orders)) == 3  # and the scenario's own
    assert figures.exposure(ACCOUNT).daily_pnl == daily

    (breach,) = guard.check_live([ACCOUNT])
    assert (breach.limit, breach.hard) == ("daily_loss", True) and alerts == [breach]
    journal.submit(buy("after", 1))
    pump_until(ib, m, lambda: journal.settled() and journal.get("after").state == "refused")

    assert single_gateway.call(lambda: list(book.open_orders)) == []  # IB's global cancel
    for key in ("rest1", "rest2"):
        assert journal.get(key).status == "Cancelled", key
    assert journal.get("queued").state == "done" and at_gateway(single_gateway, "queued") == []
    assert at_gateway(single_gateway, "after") == []
    assert "is blocked since" in journal.get("after").reason
    summary = journal.summary()
    assert summary["global_cancels"] == 1 and journal.global_cancels_to_send() == []
    assert [b["limit"] for b in summary["risk_blocks"]] == ["daily_loss"]
    assert guard.check_live([ACCOUNT]) == [] and journal.summary()["global_cancels"] == 1


# ---- in the live service ------------------------------------------------------------------


def falling(gw, margin: float = 100.0) -> tuple[float, float]:
    """A moment of today's session when the account's daily P&L is `margin` below the one at the
    gateway's now: (seconds until then, the daily P&L now)."""

    def read() -> tuple[float, float]:
        book, catalog, now = gw.gateway.book, gw.gateway.catalog, gw.gateway.clock.now()
        daily = valuation.pnl(book, catalog, now, [ACCOUNT]).daily
        for later in range(60, 4 * 3600, 60):
            moved = now + timedelta(seconds=later)
            if valuation.pnl(book, catalog, moved, [ACCOUNT]).daily < daily - margin:
                return later, daily
        raise AssertionError("the synthetic market never fell during the session")

    return gw.call(read)


def test_the_service_blocks_cancels_and_alerts_on_a_hard_breach_until_unblocked(
    make_gateway, seeded_home: Path, receiver, monkeypatch
) -> None:
    """The whole path in the service: IB's P&L moves past the daily loss limit, the account is
    blocked, IB's global cancel takes the resting order, a later order never leaves, the alert
    fires once; `unblock` lifts the block and resolves the alert once."""
    monkeypatch.setenv("IBW_ALERT_URLS", receiver.url)
    gw = make_gateway(book=Book.from_scenario(SINGLE), pnl_interval=1.0)
    later, daily = falling(gw)
    config = LiveConfig.parse(
        {"streams": [{"symbol": "AAPL", "ticks": True}], "risk": {"daily_loss": -daily + 50}}
    )
    service = LiveService(ConnectionSettings(port=gw.port, client_id=45), seeded_home, config)
    journal = Journal.open(seeded_home)
    wait = 30.0

    def sent(key: str) -> bool:
        return bool(at_gateway(gw, key))

    def risk_alerts() -> list[str]:  # the scenario's own orders alert as differences too
        return [m for m in receiver.messages() if " risk_breach " in m]

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.ensure_future(service.run(stop))
        try:
            await until(lambda: service.intraday.exposure(ACCOUNT) is not None, "figures", wait)
            journal.submit(resting("rest"))
            await until(lambda: journal.get("rest").status == "Submitted", "rest works", wait)
            assert journal.risk_blocks() == []

            gw.call(gw.gateway.clock.advance, later)  # the market falls past the limit
            await until(lambda: journal.get("rest").status == "Cancelled", "global cancel", wait)
            (block,) = journal.risk_blocks()
            assert block.limit == "daily_loss" and journal.summary()["global_cancels"] == 1
            journal.submit(buy("after", 1))
            await until(lambda: journal.get("after").state == "refused", "refused", wait)
            assert not sent("after") and "is blocked since" in journal.get("after").reason
            await until(lambda: len(risk_alerts()) == 1, "the alert", wait)

            unblock(ACCOUNT, "checked", seeded_home)
            await until(lambda: len(risk_alerts()) == 2, "the resolution", wait)
        finally:
            stop.set()
            await asyncio.wait_for(running, wait)

    try:
        util.getLoop().run_until_complete(scenario())
    finally:
        journal.close()
    fired, resolved = risk_alerts()
    assert fired.startswith(f"ib-warehouse risk_breach fired: {ACCOUNT} daily_loss:")
    assert resolved.startswith("ib-warehouse risk_breach resolved")

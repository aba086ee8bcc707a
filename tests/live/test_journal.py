"""The order journal, intents and safety rules, without a gateway: idempotency, the state
machine, execution corrections, commission joins, expected positions and the refusals."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import live
from live.export import export_journal
from live.intents import InvalidIntent, OrderIntent
from live.journal import Journal, JournalError, journal_path
from live.ledger import ExecutionRecord
from live.reconcile import expected_positions
from live.safety import OrderLimits, OrderRefused, TradingMode, check
from warehouse.parquet import read_dataset

AAPL = 265598
T0 = datetime(2024, 7, 10, 15, 0, tzinfo=UTC)


def intent(key: str = "k1", **kw) -> OrderIntent:
    base = {"account": "DU123456", "con_id": AAPL, "action": "BUY", "quantity": 10.0}
    return OrderIntent(key=key, **{**base, **kw})


def fill(exec_id: str, shares: float = 10, side: str = "BOT", **kw) -> ExecutionRecord:
    base = {"account": "DU123456", "con_id": AAPL, "price": 180.0, "time": T0, "perm_id": 7}
    return ExecutionRecord(exec_id=exec_id, side=side, shares=shares, **{**base, **kw})


# ---- intents -------------------------------------------------------------------------------


def test_intent_round_trips_through_json_and_converts_to_ib_async() -> None:
    lmt = intent(order_type="LMT", limit_price=181.5, algo="Adaptive",
                 algo_params={"adaptivePriority": "Normal"}.items(), tif="GTC")  # fmt: skip
    assert OrderIntent.from_json(lmt.to_json()) == lmt
    order = lmt.to_order(order_id=42)
    assert (order.orderId, order.orderRef, order.lmtPrice, order.tif) == (42, "k1", 181.5, "GTC")
    assert order.algoStrategy == "Adaptive" and order.algoParams[0].value == "Normal"
    assert lmt.to_contract().conId == AAPL and lmt.to_contract().exchange == "SMART"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"order_type": "LMT"}, "needs a limit price"),
        ({"order_type": "STP LMT", "limit_price": 1.0}, "needs an aux"),
        ({"order_type": "MKT", "limit_price": 1.0}, "takes no limit"),
        ({"order_type": "TRAIL"}, "trailing amount"),
        ({"quantity": 0}, "not a positive number"),
        ({"action": "SHORT"}, "use BUY or SELL"),
        ({"order_type": "MOC", "tif": "GTC"}, "use time in force DAY"),
        ({"algo": "Vwap", "order_type": "STP", "aux_price": 1.0}, "MKT and LMT"),
        ({"fa_method": "NetLiq"}, "needs an FA group"),
        ({"key": " spaced "}, "printable characters"),
        ({"order_type": "PEG"}, "not supported"),
    ],
)
def test_invalid_intents_fail_in_one_sentence(fields: dict, words: str) -> None:
    with pytest.raises(InvalidIntent) as err:
        intent(**fields)
    text = str(err.value)
    assert words in text and text.count(".") >= 1 and "\n" not in text


# ---- idempotency and the state machine ----------------------------------------------------


def test_submitting_the_same_intent_twice_is_a_no_op(journal: Journal) -> None:
    first = journal.submit(intent())
    again = journal.submit(intent())
    assert first.state == again.state == "new"
    assert len(journal.intents()) == 1
    assert [e["kind"] for e in journal.events("k1")] == ["submitted"]


def test_the_same_key_with_another_intent_is_an_error(journal: Journal) -> None:
    journal.submit(intent())
    with pytest.raises(JournalError, match="already used by a different order"):
        journal.submit(intent(quantity=11))


def test_state_machine(journal: Journal) -> None:
    journal.submit(intent())
    journal.mark_sending("k1", order_id=5, client_id=9)
    with pytest.raises(JournalError, match="is sending, not new"):
        journal.mark_sending("k1", order_id=6, client_id=9)
    journal.requeue("k1", "the gateway never got it")
    assert journal.get("k1").state == "new"
    journal.mark_sending("k1", order_id=6, client_id=9)
    journal.record_status("k1", "PreSubmitted", 0, 10, perm_id=777)
    row = journal.get("k1")
    assert (row.state, row.order_id, row.perm_id, row.status) == ("working", 6, 777, "PreSubmitted")
    assert journal.max_order_id(9) == 6 and journal.key_for("", 777) == "k1"
    journal.record_status("k1", "Filled", 10, 0, 180.0)
    journal.record_status("k1", "Submitted")  # a late, out-of-order message: stays done
    assert journal.get("k1").state == "done"
    with pytest.raises(JournalError, match="cannot be modified"):
        journal.request_modify("k1", quantity=5)


def test_a_cancel_before_sending_and_modifications_merge(journal: Journal) -> None:
    journal.submit(intent(order_type="LMT", limit_price=170.0))
    journal.request_modify("k1", limit_price=171.0)
    journal.request_modify("k1", quantity=20)
    row = journal.get("k1")
    assert row.effective.limit_price == 171.0 and row.effective.quantity == 20
    for bad in (-1, float("nan"), float("inf"), 0, "ten"):  # one sentence, nothing written
        with pytest.raises(InvalidIntent, match="is not a positive number"):
            journal.request_modify("k1", quantity=bad)
    assert journal.get("k1").modification == {"limit_price": 171.0, "quantity": 20.0}
    assert journal.request_cancel("k1").cancel_requested
    assert journal.request_cancel("k1").cancel_requested  # twice: a no-op


def test_a_failed_modification_falls_back_to_what_the_gateway_holds(journal: Journal) -> None:
    journal.submit(intent(order_type="LMT", limit_price=170.0))
    journal.mark_sending("k1", 5, 9)
    journal.record_status("k1", "Submitted", 0, 10)
    journal.request_modify("k1", quantity=12)
    journal.set_modification_state("k1", "applied")
    journal.request_modify("k1", quantity=1e9, limit_price=171.0)
    journal.set_modification_state("k1", "failed", "quantity 1e+09 exceeds the limit")
    row = journal.get("k1")
    assert row.modification == {"quantity": 12.0} and row.effective.limit_price == 170.0
    journal.request_modify("k1", limit_price=172.0)  # merged with the applied one only
    assert journal.get("k1").modification == {"limit_price": 172.0, "quantity": 12.0}


def test_a_journal_written_before_applied_modifications_were_kept_opens(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        journal.submit(intent())
    old = sqlite3.connect(journal_path(tmp_path))
    old.execute("ALTER TABLE intents DROP COLUMN applied_modification")
    old.execute("PRAGMA user_version = 0")  # as every journal before the schema had a version
    old.commit()
    old.close()
    with Journal.open(tmp_path) as journal:
        journal.request_modify("k1", quantity=12)
        journal.set_modification_state("k1", "failed", "refused")
        assert journal.get("k1").modification is None


def test_the_journal_is_shared_between_connections(journal: Journal, tmp_path: Path) -> None:
    live.submit(intent("other"), home=tmp_path)
    assert [r.key for r in journal.intents(("new",))] == ["other"]
    live.cancel("other", home=tmp_path)
    assert journal.get("other").cancel_requested
    with sqlite3.connect(journal.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_child_needs_its_parent_in_the_journal(journal: Journal) -> None:
    with pytest.raises(JournalError, match="submit the parent order first"):
        journal.submit(intent("child", parent_key="parent"))


# ---- executions, corrections, commissions, positions ---------------------------------------


def test_a_correction_supersedes_and_the_original_stays(journal: Journal) -> None:
    journal.submit(intent())
    assert journal.record_execution(fill("0001.aa.01.01"), "k1")
    assert not journal.record_execution(fill("0001.aa.01.01"), "k1")  # exactly once
    assert journal.record_execution(fill("0001.aa.01.02", price=180.5), "k1")
    rows = {e.exec_id: e for e in journal.executions("k1")}
    assert rows["0001.aa.01.01"].superseded_by == "0001.aa.01.02"
    assert rows["0001.aa.01.02"].superseded_by is None
    assert rows["0001.aa.01.02"].base_id == "0001.aa.01"


def test_a_late_or_early_commission_joins_its_execution(journal: Journal) -> None:
    journal.submit(intent())
    journal.record_execution(fill("e.1.01"), "k1")
    assert journal.summary()["fills_without_commission"] == 1
    assert journal.record_commission("e.1.01", 1.0, "USD", 0.0)
    assert not journal.record_commission("e.1.01", 1.0, "USD", 0.0)
    journal.record_commission("e.2.01", 0.5, "USD", None)  # before its execution
    journal.record_execution(fill("e.2.01"), "k1")
    commissions = {e.exec_id: e.commission for e in journal.executions()}
    assert commissions == {"e.1.01": 1.0, "e.2.01": 0.5}
    assert journal.summary()["fills_without_commission"] == 0


def test_expected_positions_count_each_correction_once(journal: Journal) -> None:
    journal.record_execution(fill("b.1.01", 100), None)
    journal.set_baseline({("DU123456", AAPL): 100.0})
    journal.record_execution(fill("b.1.02", 90), None)  # corrects a fill in the baseline
    journal.record_execution(fill("b.2.01", 30, "SLD"), None)
    journal.record_execution(fill("b.3.01", 5, account="DU999"), None)
    assert expected_positions(journal) == {("DU123456", AAPL): 60.0, ("DU999", AAPL): 5.0}


# ---- safety -------------------------------------------------------------------------------

MANAGED = ["DU123456", "U7654321"]


def test_safety_rules() -> None:
    paper, limits = TradingMode(), OrderLimits(max_quantity=100, max_notional=10_000)
    check(intent(quantity=10), MANAGED, 180.0, limits, paper)
    for bad, words in [
        (intent(account="DU000001"), "not managed"),
        (intent(account="U7654321"), "IBW_TRADING_MODE=live"),
        (intent(quantity=101), "exceeds the limit of 100"),
        (intent(quantity=60), "notional 10,800.00"),
    ]:
        with pytest.raises(OrderRefused, match=words):
            check(bad, MANAGED, 180.0, limits, paper)
    with pytest.raises(OrderRefused, match="no price is known"):
        check(intent(), MANAGED, None, limits, paper)
    with pytest.raises(OrderRefused, match="notional"):  # the multiplier counts
        check(intent(quantity=1), MANAGED, 5_000.0, limits, paper, multiplier=50)
    check(intent(order_type="LMT", limit_price=50.0, quantity=100), MANAGED, None, limits, paper)


def test_live_accounts_need_the_mode_and_the_allowlist() -> None:
    limits, live_intent = OrderLimits(), intent(account="U7654321")
    only_mode = TradingMode.from_env({"IBW_TRADING_MODE": "live"})
    only_list = TradingMode.from_env({"IBW_LIVE_ACCOUNTS": "U7654321"})
    both = TradingMode.from_env({"IBW_TRADING_MODE": "live", "IBW_LIVE_ACCOUNTS": " U7654321,"})
    for mode in (only_mode, only_list):
        with pytest.raises(OrderRefused, match="live trading is not enabled"):
            check(live_intent, MANAGED, 1.0, limits, mode)
    check(live_intent, MANAGED, 1.0, limits, both)
    with pytest.raises(OrderRefused, match="IBW_TRADING_MODE"):
        TradingMode.from_env({"IBW_TRADING_MODE": "yolo"})


def test_fa_allocations_check_every_sub_account() -> None:
    fa = intent(account="", fa_group="Everyone", fa_method="NetLiq")
    check(fa, ["F1110000", "DU1110001", "DU1110002"], 1.0, OrderLimits(), TradingMode())
    with pytest.raises(OrderRefused, match="U1110002 is a live account"):
        check(fa, ["F1110000", "DU1110001", "U1110002"], 1.0, OrderLimits(), TradingMode())


def test_a_limit_that_trades_through_the_reference_is_refused() -> None:
    paper, limits = TradingMode(), OrderLimits()
    for limit in (1.0, 99.0, 150.0, 299.0):  # a BUY below the market only waits
        check(intent(order_type="LMT", limit_price=limit), MANAGED, 200.0, limits, paper)
    for limit in (301.0, 2_000.0):
        with pytest.raises(OrderRefused, match=r"BUY limit price .* above the reference price 200"):
            check(intent(order_type="LMT", limit_price=limit), MANAGED, 200.0, limits, paper)
    for limit in (101.0, 150.0, 2_000.0):  # a SELL above the market only waits
        check(intent(action="SELL", order_type="LMT", limit_price=limit), MANAGED, 200.0,
              limits, paper)  # fmt: skip
    for limit in (1.0, 99.0):
        with pytest.raises(OrderRefused, match=r"SELL limit price .* below the reference price"):
            check(intent(action="SELL", order_type="LMT", limit_price=limit), MANAGED, 200.0,
                  limits, paper)  # fmt: skip
    with pytest.raises(OrderRefused, match="band of 10%"):
        check(intent(order_type="LMT", limit_price=230.0), MANAGED, 200.0,
              OrderLimits(max_price_deviation=0.1), paper)  # fmt: skip


def test_a_trailing_distance_is_not_taken_for_a_price() -> None:
    """A TRAIL LIMIT's limit is an offset and its aux an amount: the band leaves them alone and
    the notional is measured at the reference price, not at the distance."""
    trail = intent(quantity=100, order_type="TRAIL LIMIT", limit_price=0.5, aux_price=1.0)
    limits = OrderLimits(max_notional=10_000)
    check(trail, MANAGED, 90.0, limits, TradingMode())
    with pytest.raises(OrderRefused, match=r"notional 20,000\.00"):
        check(trail, MANAGED, 200.0, limits, TradingMode())


def test_non_finite_figures_never_pass_even_if_the_intent_skipped_validation() -> None:
    for name, value, words in [
        ("quantity", float("nan"), "quantity nan exceeds"),
        ("limit_price", float("inf"), "limit price inf is not a positive number"),
        ("aux_price", -1.0, "aux price -1 is not a positive number"),
    ]:
        broken = intent(order_type="STP LMT", limit_price=180.0, aux_price=181.0)
        object.__setattr__(broken, name, value)  # what validation would have stopped
        with pytest.raises(OrderRefused, match=words):
            check(broken, MANAGED, 180.0, OrderLimits(), TradingMode())


def test_the_price_band_comes_from_the_environment() -> None:
    assert OrderLimits.from_env({"IBW_MAX_PRICE_DEVIATION": "0.2"}).max_price_deviation == 0.2
    assert OrderLimits.from_env({}).max_price_deviation == OrderLimits().max_price_deviation
    for text, words in (("wide", "not a number"), ("0", "positive")):
        with pytest.raises(OrderRefused, match=words):
            OrderLimits.from_env({"IBW_MAX_PRICE_DEVIATION": text})


def test_a_refused_intent_is_journaled_refused(journal: Journal) -> None:
    journal.submit(intent(account="U7654321"))
    with pytest.raises(OrderRefused) as err:
        check(journal.get("k1").intent, MANAGED, 1.0, OrderLimits(), TradingMode())
    journal.refuse("k1", str(err.value))
    row = journal.get("k1")
    assert row.state == "refused" and "IBW_LIVE_ACCOUNTS" in row.reason
    assert not journal.record_status("k1", "Submitted")  # nothing revives it
    assert journal.request_cancel("k1").state == "refused"


# ---- export --------------------------------------------------------------------------------


def test_export_writes_days_and_a_rerun_replaces(journal: Journal, tmp_path: Path) -> None:
    journal.submit(intent())
    journal.mark_sending("k1", 5, 9)
    journal.record_execution(fill("x.1.01"), "k1")
    journal.record_commission("x.1.01", 1.0, "USD", 0.0)
    journal.record_difference("position", "DU1 1", "DU1 holds 1 of conId 1 but expects 0")
    home = tmp_path / "ibw"
    for _ in range(2):
        counts = export_journal(journal, home)
    assert counts == {"live_orders": 1, "live_fills": 1, "live_differences": 1}
    fills = read_dataset(home, "live_fills")
    assert fills.height == 1 and fills["commission"].to_list() == [1.0]
    assert fills.schema["time"] == pl.Datetime("us", "UTC")
    assert read_dataset(home, "live_orders")["state"].to_list() == ["sending"]
    assert (home / "warehouse.duckdb").is_file()


def test_settled_means_nothing_in_flight(journal: Journal) -> None:
    assert journal.settled()
    journal.submit(intent(order_type="LMT", limit_price=170.0))
    assert not journal.settled()  # not sent yet
    journal.mark_sending("k1", 5, 9)
    journal.record_status("k1", "Submitted", 0, 10)
    assert journal.settled()
    journal.request_modify("k1", limit_price=171.0)
    assert not journal.settled()
    journal.record_execution(fill("s.1.01"), "k1")
    journal.record_status("k1", "Filled", 10, 0, 170.0)
    assert journal.get("k1").modification_state == "abandoned"
    assert not journal.settled()  # the commission is still on its way
    journal.record_commission("s.1.01", 1.0, "USD", None)
    assert journal.settled()

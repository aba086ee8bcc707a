"""`ibw order`: intents go into the journal, status reads it back, errors are one sentence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from cli.main import main
from ibsim.accounts.book import Book
from live.journal import Journal
from live.ledger import ExecutionRecord
from tests.kit.scenarios import SINGLE
from warehouse.parquet import write_partition

AAPL, ES, BTC = 265598, 495202409, 479624278


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A warehouse with two contracts in the security master and one paper account seen."""
    monkeypatch.delenv("IBW_ACCOUNT", raising=False)
    home = tmp_path / "ibw"
    master = pl.DataFrame(
        {
            "con_id": [AAPL, ES, BTC],
            "symbol": ["AAPL", "ES", "BTC"],
            "local_symbol": ["AAPL", "ESU4", "BTC.USD"],
            "sec_type": ["STK", "FUT", "CRYPTO"],
            "exchange": ["SMART", "CME", "PAXOS"],
            "valid_to": pl.Series([None] * 3, dtype=pl.Datetime("us", "UTC")),
        }
    )
    write_partition(home, "security_master", master)
    summary = pl.DataFrame({"account": ["DU123456"], "tag": ["NetLiquidation"]})
    write_partition(home, "account_summary", summary, {"snapshot_date": "2024-07-10"})
    return home


def ibw(home: Path, *args: str) -> int:
    return main(["order", "--home", str(home), *args])


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_place_resolves_the_symbol_and_journals_the_intent(home: Path, capsys) -> None:
    assert ibw(home, "place", "AAPL", "10", "--type", "lmt", "--limit", "180", "--key", "k1") == 0
    out = lines(capsys.readouterr().out)
    assert len(out) == 1 and "Order k1 journaled (new)" in out[0] and "AAPL (265598)" in out[0]
    with Journal.open(home) as journal:
        intent = journal.get("k1").intent
    assert (intent.con_id, intent.account, intent.exchange) == (AAPL, "DU123456", "SMART")
    assert (intent.order_type, intent.limit_price, intent.action) == ("LMT", 180.0, "BUY")


def test_futures_route_to_their_exchange_and_algo_params_parse(home: Path) -> None:
    args = ["place", "ESU4", "1", "--action", "sell", "--algo", "Adaptive"]
    assert ibw(home, *args, "--algo-param", "adaptivePriority=Urgent", "--key", "f1") == 0
    with Journal.open(home) as journal:
        intent = journal.get("f1").intent
    assert (intent.con_id, intent.exchange, intent.action) == (ES, "CME", "SELL")
    assert intent.algo_params == (("adaptivePriority", "Urgent"),)


def test_cash_places_an_amount_of_money(home: Path, capsys) -> None:
    assert ibw(home, "place", "BTC", "500", "--cash", "--tif", "ioc", "--key", "c1") == 0
    assert "BUY 500 in cash MKT IOC BTC.USD" in capsys.readouterr().out
    with Journal.open(home) as journal:
        intent = journal.get("c1").intent
    assert (intent.con_id, intent.exchange, intent.quantity, intent.cash_quantity) == (
        BTC, "PAXOS", 0.0, 500.0,
    )  # fmt: skip


def test_placing_the_same_key_twice_is_idempotent(home: Path, capsys) -> None:
    for _ in range(2):
        assert ibw(home, "place", "--con-id", str(AAPL), "5", "--key", "same") == 0
    assert ibw(home, "place", "--con-id", str(AAPL), "6", "--key", "same") == 1
    err = capsys.readouterr().err
    assert "already used by a different order" in err and len(lines(err)) == 1


def test_modify_cancel_list_and_status(home: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("IBW_ACCOUNT", "DU999")
    ibw(home, "place", "AAPL", "10", "--type", "LMT", "--limit", "170", "--key", "k2")
    assert ibw(home, "modify", "k2", "--limit", "171.5") == 0
    assert ibw(home, "list", "--open") == 0
    assert ibw(home, "cancel", "k2") == 0
    with Journal.open(home) as journal:
        journal.mark_sending("k2", 5, 1)
        journal.record_status("k2", "Submitted", 0, 10, perm_id=99)
        fill = ExecutionRecord("e.1.01", "DU999", AAPL, "BOT", 4, 171.5, datetime.now(UTC))
        journal.record_execution(fill, "k2")
        journal.record_commission("e.1.01", 1.0, "USD", 0.0)
    capsys.readouterr()
    assert ibw(home, "status", "k2") == 0
    out = capsys.readouterr().out
    assert "Order k2: working, IB status Submitted" in out and "limit 171.5" in out
    for words in ("modify requested", "cancel requested", "e.1.01", "1 USD"):
        assert words in out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["place", "NOPE", "1"], "NOPE is not in the security master"),
        (["place", "AAPL", "ten"], "quantity 'ten' is not a number"),
        (["place", "AAPL", "1", "--type", "STP"], "needs an aux"),
        (["place", "AAPL", "1", "--algo-param", "x"], "is not K=V"),
        (["place", "AAPL", "1", "--fa-group", "G", "--fa-profile", "P"], "not both"),
        (["place", "AAPL", "1", "--fa-percentage", "5"], "needs an FA group"),
        (["cancel", "missing"], "no order with this key"),
        (["modify", "missing", "--limit", "1"], "no order with this key"),
        (["status", "missing"], "no order with this key"),
    ],
)
def test_errors_are_one_sentence_and_exit_1(home: Path, capsys, args, words) -> None:
    assert ibw(home, *args) == 1
    captured = capsys.readouterr()
    assert words.lower() in captured.err.lower() and len(lines(captured.err)) == 1
    assert "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--quantity", "nan", "quantity nan is not a positive number"),
        ("--quantity", "inf", "quantity inf is not a positive number"),
        ("--quantity", "-5", "quantity -5.0 is not a positive number"),
        ("--quantity", "0", "quantity 0.0 is not a positive number"),
        ("--limit", "nan", "prices must be positive numbers"),
        ("--aux", "-1", "prices must be positive numbers"),
    ],
)
def test_modify_refuses_invalid_figures_at_the_door(home: Path, capsys, flag, value, words):
    """Invalid input is one sentence at once; a size over the limits is the service's check."""
    ibw(home, "place", "AAPL", "10", "--type", "LMT", "--limit", "170", "--key", "door")
    capsys.readouterr()
    assert ibw(home, "modify", "door", f"{flag}={value}") == 1
    err = capsys.readouterr().err
    assert words in err and len(lines(err)) == 1 and "Traceback" not in err
    with Journal.open(home) as journal:
        assert journal.get("door").modification is None


def test_no_account_and_several_paper_accounts_is_an_error(tmp_path: Path, capsys) -> None:
    home = tmp_path / "empty"
    assert ibw(home, "place", "--con-id", str(AAPL), "1") == 1
    assert "give --account or set IBW_ACCOUNT" in capsys.readouterr().err


def test_what_if_previews_margin_and_commission_and_journals_nothing(
    home: Path, capsys, make_gateway, monkeypatch
) -> None:
    gateway = make_gateway(book=Book.from_scenario(SINGLE))  # its account is DU123456
    monkeypatch.delenv("IBW_GATEWAYS", raising=False)
    monkeypatch.setenv("IB_PORT", str(gateway.port))
    book = gateway.gateway.book
    before = gateway.call(lambda: len(book.open_orders) + len(book.completed_orders))
    assert ibw(home, "place", "AAPL", "100", "--what-if", "--key", "w1") == 0
    [said] = lines(capsys.readouterr().out)
    assert said.startswith("What if BUY 100 MKT DAY AAPL (265598) on DU123456: initial margin "), (
        said
    )
    assert "commission " in said and said.endswith("Nothing was placed or journaled."), said
    assert "unknown" not in said.split("commission")[0], said  # IB's margin figures came back
    with Journal.open(home) as journal:
        assert journal.find("w1") is None
    assert gateway.call(lambda: len(book.open_orders) + len(book.completed_orders)) == before


def test_cancel_all_journals_the_kill_switch(home: Path, capsys) -> None:
    assert ibw(home, "place", "AAPL", "1", "--key", "k1") == 0
    assert ibw(home, "cancel-all", "--reason", "drill") == 0
    said = lines(capsys.readouterr().out)[-1]
    assert said.startswith("Kill switch: 1 open order(s) of the journal asked to cancel"), said
    with Journal.open(home) as journal:
        assert journal.get("k1").cancel_requested
        assert len(journal.global_cancels_to_send()) == 1
        assert "kill switch: drill" in [e["detail"] for e in journal.events("k1")]

"""The backfill against the embedded gateway, into real Parquet in a temp $IBW_HOME: what lands,
what the ledger says, what a rerun sends, how gaps and failures are handled (the `bars` asset and
its sensor through Dagster: tests/assets/test_bars.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from cli.main import main
from engines.backfill import Backfill, SeriesReport, connected, load_table
from engines.bar_series import Target, targets
from ibkr.connection import ConnectionSettings
from ibkr.durations import DurationTable
from ibkr.planner import lower_bound
from ibkr.universe import BarSpec, parse_universe
from ibsim.market.instruments import STOCKS
from ibsim.market.options import chain as option_chain
from tests.kit.gateway import NOW
from tests.kit.warehouse import query
from warehouse import bars as bar_store
from warehouse import ledger
from warehouse.catalog import refresh_catalog
from warehouse.parquet import write_partition

_ids = itertools.count(400)
AAPL, EURUSD = 265598, 12087792


@pytest.fixture
def home(seeded_home: Path) -> Path:
    return seeded_home


@pytest.fixture
def open_backfill(gateway, home) -> Iterator[Callable[[], Backfill]]:
    """Backfills on their own connections to the session gateway, closed after the test."""
    with_stack = []

    def make() -> Backfill:
        settings = ConnectionSettings("127.0.0.1", gateway.port, next(_ids), 10)
        context = connected(settings, home, f"test-{next(_ids)}")
        with_stack.append(context)
        return context.__enter__()

    yield make
    for context in reversed(with_stack):
        context.__exit__(None, None, None)


def target_of(home: Path, con_id: int, spec: BarSpec) -> Target:
    [found] = [t for t in targets(home, [spec]) if t.con_id == con_id]
    return found


def run(backfill: Backfill, target: Target) -> SeriesReport:
    report = backfill.run(target)
    assert not report.errors, report.errors
    return report


def test_a_series_lands_whole_and_the_ledger_agrees(home, open_backfill):
    target = target_of(home, AAPL, BarSpec("1 min", 10))
    report = run(open_backfill(), target)
    assert report.requests == 1 and report.gaps_left == 0
    stored = bar_store.read_series(home, target.key)
    per_session = dict(stored.group_by("session_date").len().iter_rows())
    expected = [date(2024, 7, d) for d in (1, 2, 3, 5, 8, 9)]  # 07-04 is a holiday
    assert sorted(per_session) == expected
    assert per_session[date(2024, 7, 3)] == 210 and per_session[date(2024, 7, 2)] == 390
    held = ledger.read_series(home, target.key)
    assert dict(held.select("session_date", "status").iter_rows()) == dict.fromkeys(
        expected, "complete"
    )
    assert stored["ts"].is_sorted() and stored["ts"].n_unique() == stored.height
    assert stored["ts"].min().isoformat() == "2024-07-01T13:30:00+00:00"  # 09:30 New York


def test_a_second_run_sends_nothing(home, open_backfill):
    backfill = open_backfill()
    for spec in (BarSpec("1 day", 400), BarSpec("1 hour", 60)):
        run(backfill, target_of(home, EURUSD, spec))
    paced = len(backfill.pacer.log())
    for spec in (BarSpec("1 day", 400), BarSpec("1 hour", 60)):
        assert run(backfill, target_of(home, EURUSD, spec)).requests == 0
    assert len(backfill.pacer.log()) == paced  # not even a head timestamp: it is kept


def test_fx_uses_midpoints_without_volume(home, open_backfill):
    target = target_of(home, EURUSD, BarSpec("1 hour", 10))
    run(open_backfill(), target)
    stored = bar_store.read_series(home, target.key)
    assert target.what_to_show == "MIDPOINT"
    assert stored.height and stored["volume"].null_count() == stored.height


def test_an_injected_gap_is_refilled_with_one_request_and_nothing_else(home, open_backfill):
    target = target_of(home, AAPL, BarSpec("1 min", 365))
    backfill = open_backfill()
    first = run(backfill, target)
    assert first.requests == 26  # 251 sessions at 10 sessions a request
    before = bar_store.read_series(home, target.key)
    hole = date(2024, 3, 14)
    bar_store.remove_sessions(home, target.key, [hole])
    ledger.forget(home, target.key, [hole])
    backfill.request_id = "refill"
    again = run(backfill, target)
    assert again.requests == 1 and again.complete == 1
    after = bar_store.read_series(home, target.key)
    assert set(after.filter(pl.col("request_id") == "refill")["session_date"]) == {hole}
    lineage = ["request_id", "fetched_at", "source"]
    assert after.drop(lineage).equals(before.drop(lineage))


def test_small_bars_take_the_fewest_legal_requests(home, open_backfill, monkeypatch):
    monkeypatch.setenv("IBW_PACING_SCALE", "0.001")  # the session gateway does not pace
    target = target_of(home, AAPL, BarSpec("5 secs", 3))
    backfill = open_backfill()
    sessions = target.expected(NOW, None)
    report = run(backfill, target)
    assert report.requests == lower_bound(sessions, "5 secs", DurationTable.default()) == 13
    stored = bar_store.read_series(home, target.key)
    assert set(stored.group_by("session_date").len()["len"]) == {23_400 // 5}


def test_a_contract_ib_does_not_know_fails_once_permanently(home, open_backfill):
    real = target_of(home, AAPL, BarSpec("1 day", 30))
    ghost = Target(999_999_999, "GHOST", "STK", "SMART", "NASDAQ", "USD", None, real.spec)
    report = open_backfill().run(ghost)
    assert report.failed > 0 and report.requests == 0
    assert "no security definition" in report.errors[0].lower() or "not found" in (
        report.errors[0].lower()
    )
    held = ledger.read_series(home, ghost.key)
    assert held["permanent"].all() and held["status"].unique().to_list() == ["failed"]
    assert open_backfill().run(ghost).failed == 0  # not retried


def test_another_process_holding_the_series_is_left_alone(home, open_backfill):
    from shared_state.locks import try_lock

    target = target_of(home, AAPL, BarSpec("1 day", 30))
    with try_lock(home, f"bars {target.key}") as held:
        assert held
        report = open_backfill().run(target)
    assert report.skipped and report.requests == 0


class Cut(KeyboardInterrupt):
    """What Ctrl-C or SIGTERM raise in `ibw backfill` (cli.interrupts.Interrupted is one)."""


@pytest.mark.parametrize("answered", [1, 7, 15])
def test_a_run_cut_short_keeps_every_session_its_answers_finished(
    home, open_backfill, monkeypatch, answered
):
    """Issue 14: a backfill stopped after `answered` answers keeps exactly the sessions all of
    whose requests answered (in the lake and the ledger), and none that only some answered."""
    monkeypatch.setenv("IBW_PACING_SCALE", "0.001")  # the session gateway does not pace
    target = target_of(home, AAPL, BarSpec("30 secs", 40))  # requests straddle sessions
    backfill = open_backfill()
    planned, _ = backfill.plan(target, NOW)
    requests = list(planned.requests)
    assert len(requests) > answered
    sent = []

    def cut_at_the_next(series: Target, request) -> None:
        if len(sent) == answered:
            raise Cut()  # the (answered+1)-th request is never sent
        sent.append(request)

    backfill.on_request = cut_at_the_next
    report = SeriesReport(target)
    with pytest.raises(Cut):
        backfill.run(target, NOW, report)
    done = requests[:answered]
    due = {d for r in requests[answered:] for d in r.covers}
    finished = {d for r in done for d in r.covers} - due
    started = {d for r in done for d in r.covers} & due
    held = ledger.read_series(home, target.key)
    assert set(held["session_date"]) == finished and set(held["status"]) == {"complete"}
    stored = bar_store.read_series(home, target.key)
    assert set(stored["session_date"]) == finished  # the lake says the same
    assert report.requests == answered and report.complete == len(finished)
    assert report.partial == len(started)


# ------------------------------------------------------------------ command line
def test_ibw_plan_then_backfill_then_nothing(gateway, home, monkeypatch, capsys):
    monkeypatch.setenv("IB_PORT", str(gateway.port))
    # 30d is 30 sessions: three requests of a week of 1-min bars
    args = ["AAPL", "--home", str(home), "--bar-size", "1 min", "--history", "30d"]
    assert main(["plan", *args]) == 0
    out = capsys.readouterr().out
    assert "AAPL 1 min TRADES" in out and "3 requests" in out
    assert main(["backfill", *args]) == 0
    out = capsys.readouterr().out
    assert "Backfilled 1 series with 3 requests" in out and "0 sessions still missing" in out
    assert main(["backfill", *args]) == 0
    assert "Nothing to fetch for 1 series" in capsys.readouterr().out


def test_ibw_backfill_without_a_security_master_says_what_to_do(gateway, tmp_path, capsys):
    code = main(["backfill", "--home", str(tmp_path / "empty"), "--bar-size", "1 day"])
    assert code == 1
    err = capsys.readouterr().out
    assert "no security master yet" in err and "run `ibw universe` first" in err


def test_the_session_that_just_closed_is_fetched_next(make_gateway, home):
    from ibsim.clock import ManualClock

    clock = ManualClock(NOW)  # 11:00 New York: today's session is still open
    gw = make_gateway(clock=clock)
    settings = ConnectionSettings("127.0.0.1", gw.port, next(_ids), 10)
    target = target_of(home, AAPL, BarSpec("1 min", 10))
    with connected(settings, home, "incremental") as backfill:
        assert run(backfill, target).complete == 6
        clock.advance(6 * 3600)  # 17:00 New York: closed
        after_close = run(backfill, target)
    assert (after_close.requests, after_close.complete) == (1, 1)
    stored = bar_store.read_series(home, target.key)
    assert stored.filter(pl.col("session_date") == NOW.date()).height == 390


@pytest.mark.slow
def test_a_span_ib_refuses_is_halved_and_remembered(home, open_backfill):
    from ibkr.durations import Span

    backfill = open_backfill()
    spans = {**DurationTable.default().spans, "1 min": Span(365, "D")}
    backfill.table = DurationTable(spans)  # 365 sessions of 16 h: too big for one answer
    target = target_of(home, AAPL, BarSpec("1 min", 730, use_rth=False))
    report = run(backfill, target)
    assert backfill.table.span("1 min") == Span(182, "D")
    assert report.gaps_left == 0 and report.requests == 3  # 502 sessions in 182-session spans
    assert load_table(home).span("1 min") == Span(182, "D")  # the next run starts there


def test_a_session_whose_other_request_failed_is_never_recorded_complete(home):
    from datetime import timedelta

    from ib_async import BarData

    from engines.bar_batch import SessionBatch
    from ibkr.planner import PlannedRequest

    target = target_of(home, AAPL, BarSpec("5 secs", 3))
    sessions = target.expected(NOW, None)
    day, opened = sessions[-1].day, sessions[-1].open
    late = PlannedRequest("20240709-20:00:00", "3600 S", "5 secs", "TRADES", True, (day,))
    early = PlannedRequest("20240709-19:00:00", "3600 S", "5 secs", "TRADES", True, (day,))
    batch = SessionBatch(target, sessions, [late, early])
    bar = BarData(opened + timedelta(hours=6), 1.0, 2.0, 0.5, 1.5, 10, 1.2, 3)
    batch.add(late, [bar])
    assert batch.fail(early) == [day]
    days, frame = batch.take_finished()
    assert days == [] and frame.is_empty()  # neither complete nor empty: a gap, retried later


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--bar-size", "2 min"], "'2 min' is not an IB bar size; use one of 1 secs"),
        (["--bar-size", "1 min", "--history", "ten"], "history is a count and a unit"),
        (["--bar-size", "1 min", "--what-to-show", "PRICE"], "what_to_show must be one of"),
        (["NOPE", "--bar-size", "1 min"], "no contract in the security master matches"),
    ],
)
def test_bad_backfill_input_is_one_sentence(gateway, home, monkeypatch, capsys, args, sentence):
    monkeypatch.setenv("IB_PORT", str(gateway.port))
    assert main(["backfill", "--home", str(home), *args]) == 1
    out = capsys.readouterr().out
    assert sentence in out and "Traceback" not in out and len(out.strip().splitlines()) <= 3


def test_a_gateway_that_is_down_is_one_sentence(home, monkeypatch, capsys):
    monkeypatch.setenv("IB_PORT", "1")  # nothing listens there
    assert main(["plan", "--home", str(home), "--bar-size", "1 day"]) == 1
    out = capsys.readouterr().out
    assert "ibw plan:" in out and "Traceback" not in out


def test_a_bar_between_sessions_goes_to_quarantine_and_one_before_the_range_is_dropped(home):
    from datetime import timedelta

    from ib_async import BarData

    from engines.bar_batch import SessionBatch
    from ibkr.planner import PlannedRequest

    target = target_of(home, AAPL, BarSpec("1 min", 10))
    sessions = target.expected(NOW, None)
    first = sessions[0]
    request = PlannedRequest("20240701-20:00:00", "1 D", "1 min", "TRADES", True, (first.day,))
    evening = first.close + timedelta(hours=1)  # after the close, inside the range
    before = first.open - timedelta(days=3)  # a `N Y` span reaching past the range
    batch = SessionBatch(target, sessions, [request])
    batch.add(
        request,
        [BarData(at, 1.0, 2.0, 0.5, 1.5, 10, 1.2, 3) for at in (before, first.open, evening)],
    )
    days, frame = batch.take_finished()
    assert days == [first.day]
    assert frame["ts"].to_list() == [first.open, evening]
    assert frame["session_date"].to_list() == [first.day, None]


def test_options_of_the_newest_chain_backfill_while_they_live(home, open_backfill):
    """A bars series naming OPT covers the newest stored chain's options, up to each expiry."""
    spy = next(s for s in STOCKS if s.symbol == "SPY")
    [opt] = [o for o in option_chain(NOW) if o.local_symbol == "SPY   240712C00560000"]
    chain = pl.DataFrame({
        "snapshot_date": [date(2024, 7, 10)], "underlying_con_id": [spy.con_id],
        "underlying_symbol": ["SPY"], "con_id": [opt.con_id], "sec_type": ["OPT"],
        "local_symbol": [opt.local_symbol], "expiry": [date(2024, 7, 12)], "strike": [560.0],
        "right": ["C"], "exchange": ["SMART"], "multiplier": ["100"], "trading_class": ["SPY"],
        "underlying_price": [560.0], "days_to_expiry": [2], "moneyness": [1.0],
        "request_id": ["test"], "fetched_at": [datetime.now(UTC)], "source": ["ibsim"],
    })  # fmt: skip
    write_partition(home, "option_chains", chain, {"snapshot_date": "2024-07-10"})
    spec = BarSpec("1 hour", 10, sec_types=("OPT",))
    [target] = targets(home, [spec])
    assert (target.con_id, target.sec_type, target.what_to_show) == (opt.con_id, "OPT", "TRADES")
    assert target.expiry == date(2024, 7, 12)
    report = run(open_backfill(), target)
    assert report.gaps_left == 0
    stored = bar_store.read_series(home, target.key)
    sessions = sorted(set(stored["session_date"].to_list()))
    assert sessions == [date(2024, 7, d) for d in (1, 2, 3, 5, 8, 9)]  # regular hours only
    assert stored["ts"].dt.hour().min() >= 13 and stored["close"].min() > 0


def test_an_option_windows_underlying_gets_its_implied_and_historical_vol(home, open_backfill):
    """The universe's option windows add the underlying's daily OPTION_IMPLIED_VOLATILITY and
    HISTORICAL_VOLATILITY series; they backfill as any bars, and `iv_history` puts them side by
    side."""
    universe = parse_universe(
        {"entries": [{"symbol": "SPY"}], "options": [{"underlying": "SPY", "iv_history": "20d"}]}
    )
    assert [s.key for s in universe.bars] == [
        "1 day OPTION_IMPLIED_VOLATILITY rth",
        "1 day HISTORICAL_VOLATILITY rth",
    ]
    backfill = open_backfill()
    for spec in universe.bars:
        [target] = [t for t in targets(home, [spec]) if t.symbol == "SPY"]
        run(backfill, target)
    refresh_catalog(home)
    rows = query(
        home, "SELECT session_date, implied_vol, historical_vol FROM iv_history "
        "WHERE symbol = 'SPY' ORDER BY 1"
    )  # fmt: skip
    assert len(rows) >= 13  # 20 calendar days back from 07-10
    for _, implied, realised in rows:
        assert 0.03 < implied < 1.5 and 0.01 < realised < 1.5

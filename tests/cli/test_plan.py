"""`ibw plan` costs nothing and `--start/--end` bound what plan and backfill ask for (issue 14):
a plan on a fresh warehouse sends IB no historical or head-timestamp request and says what the
backfill will ask first; bad dates end in one sentence with the fix."""

from __future__ import annotations

import re
import subprocess

import pytest

from cli.main import main
from tests.kit.processes import IBW, ROOT, environment

HISTORICAL_DATA, HEAD_TIMESTAMP = 20, 87  # the request message ids the gateway counts


@pytest.fixture
def home(seeded_home):
    return seeded_home  # the security master, no head timestamp asked yet


@pytest.fixture
def private_gateway(make_gateway, monkeypatch):
    """A gateway of the test's own, so what it was sent can be counted."""
    gw = make_gateway()
    monkeypatch.setenv("IB_PORT", str(gw.port))
    monkeypatch.setenv("COLUMNS", "200")
    return gw


def plan(home, capsys, *args: str) -> tuple[int, str]:
    code = main(["plan", *args, "--home", str(home)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def historical_requests(gw) -> int:
    received = gw.gateway.requests_received
    return received[HISTORICAL_DATA] + received[HEAD_TIMESTAMP]


def test_dates_bound_the_sessions_planned(home, private_gateway, capsys):
    args = ["AAPL", "--bar-size", "1 day", "--start", "2024-07-01", "--end", "2024-07-03"]
    code, out = plan(home, capsys, *args)
    assert code == 0, out
    assert re.search(r"AAPL 1 day TRADES +│ +3 │", out), out  # 07-01, 07-02 and 07-03
    assert historical_requests(private_gateway) == 0


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--start", "2024-07-05", "--end", "2024-07-01"],
         "--end 2024-07-01 is not after --start 2024-07-05; give an end later than the start."),
        (["--start", "2030-01-02"],
         "--start 2030-01-02 is in the future for AAPL (the gateway's time is 2024-07-10 15:00 "
         "UTC); give a start in the past."),
    ],
)  # fmt: skip
def test_a_span_that_cannot_hold_a_session_is_one_sentence(
    home, private_gateway, capsys, args, sentence
):
    code, out = plan(home, capsys, "AAPL", "--bar-size", "1 day", *args)
    assert code == 1
    assert out.strip() == f"ibw plan: {sentence}"


def test_a_date_that_is_not_one_is_refused_by_the_parser(home, capsys):
    with pytest.raises(SystemExit) as refused:
        main(["plan", "--home", str(home), "--start", "2024-13-01"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert (
        "'2024-13-01' is neither a date nor a time; write YYYY-MM-DD or 'YYYY-MM-DD HH:MM'" in err
    )
    assert "Traceback" not in err


@pytest.mark.slow  # two real `ibw` processes
def test_a_plan_on_a_fresh_warehouse_spends_nothing_and_the_backfill_after_does_not_wait(
    home, make_gateway
):
    gw = make_gateway()
    env = environment(gw.port)
    args = ["AAPL", "MSFT", "--home", str(home), "--bar-size", "30 secs", "--history", "3d"]
    planned = subprocess.run(
        [*IBW, "plan", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert historical_requests(gw) == 0  # no head timestamp, no bars: the budget is untouched
    assert (
        "The backfill will first ask IB for 2 head timestamps (2 small-bar requests)"
        in planned.stdout
    )
    assert "2 series: 6 requests" in planned.stdout

    filled = subprocess.run(
        [*IBW, "backfill", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    out = filled.stdout
    assert filled.returncode == 0, out + filled.stderr
    assert "waiting for IB's pacing window" not in out
    assert gw.gateway.requests_received[HEAD_TIMESTAMP] == 2  # the two the plan announced
    assert gw.gateway.requests_received[HISTORICAL_DATA] == 6
    assert "Small-bar pacing budget in use: 8 of 52 per window." in out


def test_the_plan_says_which_login_fetches_each_series(
    home, private_gateway, make_gateway, capsys, monkeypatch, tmp_path
):
    second = make_gateway()
    gateways = tmp_path / "gateways.yml"
    gateways.write_text(
        "gateways:\n"
        f"  - {{name: alpha, host: 127.0.0.1, port: {private_gateway.port}, role: data,"
        " symbols: [AAPL]}\n"
        f"  - {{name: beta, host: 127.0.0.1, port: {second.port}, role: data, symbols: [MSFT]}}\n"
    )
    monkeypatch.setenv("IBW_GATEWAYS", str(gateways))
    code, out = plan(home, capsys, "AAPL", "MSFT", "--bar-size", "1 day", "--history", "5d")
    assert code == 0, out
    assert re.search(r"alpha +│ AAPL 1 day TRADES", out) and re.search(r"beta +│ MSFT 1 day", out)
    assert f"1 series on IB login alpha (127.0.0.1:{private_gateway.port}):" in out
    assert f"1 series on IB login beta (127.0.0.1:{second.port}):" in out
    code, out = plan(home, capsys, "AAPL", "--bar-size", "1 day", "--login", "gamma")
    assert code == 1 and "No IB login is called 'gamma': use one of alpha, beta." in out

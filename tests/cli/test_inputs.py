"""Issue 12's hostile inputs to `ibw plan` and the port options: each ends at once in one
sentence naming the option and the fix, never an OverflowError, a timeout or a silent cut."""

from __future__ import annotations

import re
import subprocess

import pytest
from ib_async import Contract

from cli.main import main
from ibkr import errors
from ibkr.client import IBClient
from ibkr.connection import ConnectionSettings
from tests.kit.processes import IBW, ROOT

SPX = 416904


@pytest.fixture
def home(seeded_home):
    return seeded_home


@pytest.fixture
def quiet_gateway(make_gateway, monkeypatch):
    """A private gateway the command talks to, so what it was sent can be counted."""
    gw = make_gateway()
    monkeypatch.setenv("IB_PORT", str(gw.port))
    return gw


def plan(home, capsys, *args: str) -> tuple[int, str]:
    code = main(["plan", *args, "--home", str(home)])
    return code, capsys.readouterr().out


@pytest.mark.parametrize(
    ("symbol", "what", "sentence"),
    [
        ("SPX", "BID_ASK", "SPX: IB serves no BID_ASK history for indices (IND); use TRADES"),
        ("EUR.USD", "TRADES", "EUR.USD: IB serves no TRADES history for forex pairs (CASH); use "
         "MIDPOINT, BID, ASK, BID_ASK"),
    ],
)  # fmt: skip
def test_a_what_to_show_ib_refuses_for_the_type_is_said_before_any_request(
    home, quiet_gateway, capsys, symbol, what, sentence
):
    code, out = plan(home, capsys, symbol, "--bar-size", "1 day", "--what-to-show", what)
    assert code == 1
    assert sentence in out and "no contract" not in out and "Traceback" not in out
    assert quiet_gateway.gateway.pacer.admitted == 0  # not even the head timestamp was sent


def test_a_321_on_a_head_timestamp_is_the_final_answer(gateway):
    """A contract given by conId alone passes the client's check (it names no security type),
    so the gateway judges it: its 321 ends the request, where ib_async would wait it out."""
    settings = ConnectionSettings(port=gateway.port, client_id=470)
    client = IBClient.open(settings, "refused-head", request_timeout=120)
    try:
        with pytest.raises(errors.InvalidRequest) as refused:
            client.run(client.head_timestamp(Contract(conId=SPX, exchange="CBOE"), "BID_ASK", True))
    finally:
        client.close()
    assert refused.value.code == 321
    assert "What to show value of BID_ASK rejected" in refused.value.sentence


def test_a_321_on_historical_bars_is_the_final_answer(gateway):
    settings = ConnectionSettings(port=gateway.port, client_id=471)
    client = IBClient.open(settings, "refused-bars", request_timeout=120)
    try:
        with pytest.raises(errors.InvalidRequest) as refused:
            client.run(
                client.historical_bars(
                    Contract(conId=SPX, exchange="CBOE"), "", "1 D", "1 hour", "MIDPOINT", True,
                    "SPX hours",
                )
            )  # fmt: skip
    finally:
        client.close()
    assert refused.value.code == 321 and refused.value.sentence.startswith("SPX hours:")


def test_the_client_checks_what_to_show_before_sending(gateway):
    settings = ConnectionSettings(port=gateway.port, client_id=472)
    client = IBClient.open(settings, "checked-head")
    try:
        with pytest.raises(errors.InvalidRequest) as refused:
            client.run(client.head_timestamp(Contract(conId=SPX, secType="IND"), "MIDPOINT", True))
    finally:
        client.close()
    assert refused.value.code is None  # ours, not IB's
    assert client.requests == 0


def test_a_huge_history_is_one_sentence_labelled_history(home, capsys):
    code, out = plan(home, capsys, "--bar-size", "1 min", "--history", "99999999999999999999y")
    assert code == 1
    assert out.startswith("ibw plan: --history: 99999999999999999999y reaches further back")
    assert "OverflowError" not in out and "--bar-size:" not in out


def test_a_year_of_one_second_bars_is_planned_as_six_months_and_the_plan_says_so(
    home, gateway, monkeypatch, capsys
):
    monkeypatch.setenv("IB_PORT", str(gateway.port))
    monkeypatch.setenv("COLUMNS", "200")
    code, out = plan(home, capsys, "AAPL", "--bar-size", "1 secs", "--history", "1y")
    assert code == 0, out
    assert (
        "IB keeps 6 months of bars of 30 seconds and smaller, so 1 secs auto rth is planned for "
        "the last 180 days, not the 366 asked for." in out
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["gateway", "--port", "99999"],
        ["gateway", "--port", "-1"],
        ["dev", "--port", "0"],
        ["dev", "--port", "70000"],
        ["dev", "--gateway-port", "-1"],
    ],
)
def test_ports_outside_the_tcp_range_are_one_sentence(args):
    result = subprocess.run(
        [*IBW, *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )  # nothing is started: argparse refuses before
    assert result.returncode == 2
    assert re.search(r"is not a TCP port; use [01] to 65535", result.stderr)
    assert "Traceback" not in result.stderr + result.stdout


def test_a_universe_spec_that_names_a_type_ib_refuses_is_one_sentence():
    from ibkr.universe import UniverseError, parse_bar_spec

    item = {"bar_size": "1 hour", "history": "1y", "what_to_show": "BID", "sec_types": ["IND"]}
    with pytest.raises(UniverseError) as refused:
        parse_bar_spec(item, "universe bars 1")
    assert str(refused.value) == (
        "universe bars 1: IB serves no BID history for indices (IND): "
        "use TRADES, OPTION_IMPLIED_VOLATILITY, HISTORICAL_VOLATILITY as what-to-show."
    )


def test_a_live_service_without_a_trading_login_is_one_sentence(
    home, tmp_path, monkeypatch, capsys
):
    gateways = tmp_path / "gateways.yml"
    gateways.write_text("gateways:\n  - {name: alpha, host: 127.0.0.1, port: 4002, role: data}\n")
    monkeypatch.setenv("IBW_GATEWAYS", str(gateways))
    assert main(["live", "--home", str(home), "--for", "1"]) == 1
    said = " ".join(capsys.readouterr().err.split())
    assert "ibw live: No IB login trades: give the live service's login role trading or" in said
    assert "Traceback" not in said

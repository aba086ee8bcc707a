"""The gateways file: every mistake in one sentence, and the assignment of contracts to data
logins: pinned by symbol, otherwise spread evenly, stable, and moved only to a login added."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from engines.gateways_file import GATEWAYS, load_logins
from ibkr.gateways import (
    DEFAULT_NAME,
    GatewaysError,
    Login,
    data_login,
    find_login,
    live_logins,
    parse_gateways,
)

TWO = {
    "gateways": [
        {"name": "alpha", "host": "10.0.0.5", "port": 4002, "role": "data", "symbols": ["aapl"]},
        {"name": "beta", "host": "10.0.0.6", "port": 4002, "role": "data", "region": "europe"},
        {"name": "orders", "host": "10.0.0.7", "port": 4001, "role": "trading",
         "accounts": ["U123"], "client_id_base": 500},
    ]
}  # fmt: skip


def test_a_file_gives_its_logins():
    alpha, beta, orders = parse_gateways(TWO, "gateways.yml")
    assert (alpha.name, alpha.address, alpha.symbols) == ("alpha", "10.0.0.5:4002", ("AAPL",))
    assert beta.serves_data and not beta.trades and beta.region == "europe"
    assert orders.trades and not orders.serves_data and orders.accounts == ("U123",)
    assert orders.settings().client_id == 500


def test_without_the_setting_one_login_from_the_environment(monkeypatch):
    monkeypatch.delenv(GATEWAYS, raising=False)
    monkeypatch.setenv("IB_HOST", "10.1.1.1")
    monkeypatch.setenv("IB_PORT", "4001")
    [login] = load_logins()
    assert (login.name, login.address, login.role) == (DEFAULT_NAME, "10.1.1.1:4001", "both")


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"gateways": []}, "`gateways:` must be a list of at least one IB login."),
        ({"gateways": [{"name": "a", "host": "h"}]}, "`port` is missing; every login needs"),
        ({"gateways": [{"name": "A b", "host": "h", "port": 1}]}, "name 'A b' must be lower-case"),
        ({"gateways": [{"name": "a", "host": "h", "port": 70000}]}, "port 70000 must be a TCP"),
        ({"gateways": [{"name": "a", "host": "h", "port": 1, "role": "read"}]},
         "role 'read' must be one of data, trading, both."),
        ({"gateways": [{"name": "a", "host": "h", "port": 1, "region": "mars"}]},
         "region 'mars' must be one of"),
        ({"gateways": [{"name": "a", "host": "h", "port": 1, "pasword": "x"}]},
         "unknown key 'pasword'"),
        ({"gateways": [{"name": "a", "host": "h", "port": 1},
                       {"name": "a", "host": "h", "port": 2}]}, "share the name a"),
        ({"gateways": [{"name": "a", "host": "h", "port": 1},
                       {"name": "b", "host": "h", "port": 1}]}, "share the address h:1"),
        ({"gateways": [{"name": "a", "host": "h", "port": 1, "role": "trading"}]},
         "no login has role data or both"),
        ({"gateways": [{"name": "a", "host": "h", "port": 1, "symbols": ["ES"], "role": "data"},
                       {"name": "b", "host": "h", "port": 2, "symbols": ["es"]}]},
         "ES is pinned to both a and b"),
        ({"other": 1}, "has no `gateways:` section"),
        ({"gateways": [{"name": "a", "host": "h", "port": 1},
                       {"name": "b", "host": "h", "port": 2, "accounts": ["U1"]}]},
         "2 logins trade, so each needs its `accounts`"),
        ({"gateways": [{"name": "a", "host": "h", "port": 1, "accounts": ["U1"]},
                       {"name": "b", "host": "h", "port": 2, "accounts": ["U1"]}]},
         "account U1 is listed for both a and b"),
    ],
)  # fmt: skip
def test_each_mistake_is_one_sentence(change, said):
    with pytest.raises(GatewaysError) as failure:
        parse_gateways(change, "gateways.yml")
    sentence = failure.value.sentence
    assert said in sentence and sentence.endswith(".") and "\n" not in sentence


def test_a_missing_file_and_an_unknown_login_are_one_sentence(tmp_path):
    with pytest.raises(GatewaysError, match=r"^No gateways file at .*: create it or unset"):
        load_logins(tmp_path / "nope.yml")
    path = tmp_path / "gateways.yml"
    path.write_text(yaml.safe_dump(TWO))
    with pytest.raises(GatewaysError, match="No IB login is called 'gamma': use one of alpha, "):
        find_login(load_logins(path), "gamma")


def test_contracts_are_pinned_by_symbol_else_spread_evenly_over_data_logins():
    logins = parse_gateways(TWO, "gateways.yml")
    assert data_login(logins, "265598", "aapl").name == "alpha"  # pinned
    counts = {"alpha": 0, "beta": 0}
    for con_id in range(10_000, 12_000):
        counts[data_login(logins, str(con_id), "X").name] += 1  # never `orders`: trading only
    assert 900 <= counts["alpha"] <= 1100 and sum(counts.values()) == 2000


def test_a_login_added_takes_contracts_from_the_others_and_moves_no_other():
    two = [Login("alpha", port=1), Login("beta", port=2)]
    three = [*two, Login("gamma", port=3)]
    moved = 0
    for con_id in range(5_000):
        before, after = data_login(two, str(con_id), ""), data_login(three, str(con_id), "")
        if before != after:
            assert after.name == "gamma"
            moved += 1
    assert 1400 <= moved <= 1950  # about a third


def test_a_login_knows_its_reset_window():
    beta = parse_gateways(TWO, "gateways.yml")[1]  # europe: 06:25-07:45 Central European time
    assert beta.in_reset(datetime(2026, 12, 7, 5, 30, tzinfo=UTC))  # 06:30 in Zurich
    assert not beta.in_reset(datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
    assert not Login("embedded").in_reset(datetime(2026, 12, 7, 5, 30, tzinfo=UTC))


def test_broken_yaml_is_one_sentence_with_its_line(tmp_path):
    path = tmp_path / "gateways.yml"
    path.write_text("gateways:\n  - name: [a\n")
    with pytest.raises(GatewaysError) as failure:
        load_logins(path)
    assert failure.value.sentence == (
        f"{path} is not valid YAML at line 3 (expected ',' or ']', but got '<stream end>'): "
        "fix its syntax."
    )


def test_the_live_service_trades_on_the_trading_login_and_streams_on_a_data_login():
    logins = parse_gateways(TWO, "gateways.yml")
    trading, data = live_logins(logins)
    assert (trading.name, data.name) == ("orders", "alpha")  # the first data login
    assert live_logins(logins, data="beta")[1].name == "beta"
    single = Login(DEFAULT_NAME)
    assert live_logins((single,)) == (single, single)  # one login does both


@pytest.mark.parametrize(
    ("trading", "data", "said"),
    [
        ("alpha", None, "IB login alpha has role data: give it role trading or both"),
        (None, "orders", "IB login orders has role trading: give it role data or both"),
        ("gamma", None, "No IB login is called 'gamma': use one of alpha, beta, orders."),
    ],
)
def test_the_live_service_s_logins_named_wrong_are_one_sentence(trading, data, said):
    with pytest.raises(GatewaysError, match=said):
        live_logins(parse_gateways(TWO, "gateways.yml"), trading, data)


def test_the_live_service_needs_one_trading_login_or_its_name():
    data_only = [dict(login, role="data") for login in TWO["gateways"]]
    with pytest.raises(GatewaysError, match="No IB login trades: give the live service's login"):
        live_logins(parse_gateways({"gateways": data_only}, "gateways.yml"))
    two_traders = [dict(login, role="both", accounts=[f"U{i}"])
                   for i, login in enumerate(TWO["gateways"][:2])]  # fmt: skip
    logins = parse_gateways({"gateways": two_traders}, "gateways.yml")
    with pytest.raises(GatewaysError, match=r"2 IB logins trade \(alpha, beta\): name the live"):
        live_logins(logins)
    assert live_logins(logins, "beta") == (logins[1], logins[1])

"""The error catalogue: every IB code renders as one sentence with a cause and a fix.

Texts come from the embedded gateway (`ibsim.market.errors`) where it sends them, so a change in the
gateway's wording that breaks the classification shows up here.
"""

from __future__ import annotations

import pickle
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ib_async import Future, Option, RequestError, Stock

from ibkr import connection
from ibkr import errors as E
from ibkr.errors import (
    CATALOGUE,
    AmbiguousContract,
    ContractNotFound,
    ExpiredContract,
    GatewayUnavailable,
    IBRequestError,
    IBWError,
    InvalidRequest,
    Kind,
    NoData,
    NoPermission,
    PacingViolation,
    RequestTimeout,
    from_ib,
    from_request_error,
    is_informational,
    is_warning,
    lookup,
    one_sentence,
)
from ibsim.market import errors as sim

# The codes of IB's "Message Codes" page the project meets (docs/IB-RULES.md), and a few more.
REQUIRED = {
    100, 101, 102, 103, 104, 110, 135, 161, 162, 165, 166, 200, 201, 202, 321, 322, 326, 354,
    366, 399, 404, 420, 434, 435, 436, 439, 502, 504, 585, 1100, 1101, 1102, 2100, 2102, 2103,
    2104, 2105, 2106, 2107, 2108, 2110, 2119, 2137, 2150, 2157, 2158, 10089, 10090, 10147,
    10148, 10167, 10168, 10197,
    309, 317, 10225, 10314, 10339, 2174, 10230,
}  # fmt: skip

# ib_async's Wrapper.error never ends a request on these (nor on 2100-2199).
IB_ASYNC_WARNINGS = {105, 110, 165, 321, 329, 399, 404, 434, 492, 10167}
# Where the catalogue deliberately differs from ib_async: 110 and 321 kill a new request or
# order, and lost farms or a lost link are connectivity, not mere warnings.
NOT_WARNINGS_ON_PURPOSE = {110, 321, 2103, 2105, 2110, 2157}


def assert_one_sentence(text: str) -> None:
    assert text
    assert len(text.splitlines()) == 1, text
    assert text.isprintable(), text
    assert text == text.strip()
    assert "Traceback" not in text


def fragment(s: str) -> str:
    """How a catalogue phrase appears in a sentence (trailing period dropped)."""
    return s.rstrip(" .")


# --- the catalogue ----------------------------------------------------------------------------


def test_the_catalogue_covers_every_code_the_rules_name():
    assert REQUIRED - set(CATALOGUE) == set()


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_catalogued_code_is_one_sentence_with_its_cause_and_fix(code):
    info = CATALOGUE[code]
    assert info.code == code
    assert isinstance(info.kind, Kind)
    assert issubclass(info.exception, IBWError)
    for phrase in (info.cause, info.fix):
        assert phrase and phrase == phrase.strip() and not phrase.endswith(".")
        assert_one_sentence(phrase)

    with_subject = str(from_ib(code, "", subject="AAPL STK SMART"))
    assert_one_sentence(with_subject)
    assert with_subject.startswith("AAPL STK SMART: ")
    assert with_subject.endswith(f"(IB {code}).")
    assert fragment(info.cause) in with_subject
    assert fragment(info.fix) in with_subject

    bare = str(from_ib(code, ""))
    assert_one_sentence(bare)
    assert bare[0].isupper()
    assert bare.endswith(f"(IB {code}).")


def test_kinds_follow_ib_async_where_it_makes_sense():
    for code, info in CATALOGUE.items():
        ib_async_warning = code in IB_ASYNC_WARNINGS or 2100 <= code < 2200
        if ib_async_warning and code not in NOT_WARNINGS_ON_PURPOSE:
            assert info.kind in (Kind.WARNING, Kind.INFORMATION), code
    assert is_warning(10167) and is_warning(165) and is_warning(366) and is_warning(2174)
    assert not is_warning(321) and not is_warning(200) and not is_warning(162)
    for code in (2104, 2106, 2107, 2108, 2119, 2158):
        assert is_informational(code) and not is_warning(code)
    for code in (1100, 1101, 1102, 502, 504, 326):
        assert lookup(code).kind is Kind.CONNECTIVITY
        assert not is_warning(code) and not is_informational(code)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (100, PacingViolation),
        (110, InvalidRequest),
        (165, NoData),
        (166, ExpiredContract),
        (200, ContractNotFound),
        (201, IBRequestError),
        (321, InvalidRequest),
        (326, GatewayUnavailable),
        (354, NoPermission),
        (366, IBRequestError),
        (502, GatewayUnavailable),
        (504, GatewayUnavailable),
        (1100, GatewayUnavailable),
        (1101, IBRequestError),
        (10089, NoPermission),
        (10167, NoPermission),
        (10168, NoPermission),
        (10197, IBRequestError),
        (10314, InvalidRequest),
        (10339, InvalidRequest),
    ],
)
def test_each_code_raises_its_subclass(code, cls):
    assert lookup(code).exception is cls
    exc = from_ib(code, "some text from IB")
    assert type(exc) is cls
    assert exc.code == code and exc.ib_text == "some text from IB"


# --- the text decides for 162, 200, 322 and 420 ------------------------------------------------


@pytest.mark.parametrize(
    ("error", "cls", "says"),
    [
        (sim.pacing_violation(), PacingViolation, "10-minute window"),
        (sim.no_data("AAPL", "SMART", "TRADES"), NoData, "no bars for this window"),
        (sim.time_length_exceeded(), InvalidRequest, "duration is longer"),
        (sim.query_cancelled(7), RequestTimeout, "cancelled before it answered"),
        (sim.SERVER_ERROR, IBRequestError, "HMDS server error"),
        (sim.hmds("No market data permissions for ARCAEDGE STK"), NoPermission, "permission"),
        (sim.hmds("No historical market data for 1769/STK@NYSENBBO"), NoData, "SMART"),
        (sim.hmds("invalid step: 7"), InvalidRequest, "invalid step"),
        (
            sim.hmds("Trading TWS session is connected from a different IP address"),
            IBRequestError,
            "different IP address",
        ),
        (sim.NO_SECURITY, ContractNotFound, "no security definition"),
        (sim.ambiguous("ES"), AmbiguousContract, "more than one contract"),
        (sim.too_many_open(50), PacingViolation, "open at once"),
        (
            sim.IBError(
                322,
                "Error processing request.-'bS' : cause - Duplicate ticker ID for "
                "API historical data query",
            ),
            IBRequestError,
            "fresh request id",
        ),
        (
            sim.IBError(
                322,
                "Error processing request.-'bS' : cause - Maximum number of account "
                "summary requests exceeded; desubscribe to previous request first",
            ),
            IBRequestError,
            "account summary",
        ),
        (
            sim.IBError(420, "Invalid Real-time Query:Historical data request pacing violation"),
            PacingViolation,
            "real-time",
        ),
        (
            sim.IBError(420, "Invalid Real-time Query:No market data permissions for ISLAND STK"),
            NoPermission,
            "real-time",
        ),
        (sim.expired_contract(), ExpiredContract, "expired"),
        (sim.invalid_request("Bar size is not valid"), InvalidRequest, '("Bar size is not valid")'),
        (sim.no_query(7), IBRequestError, "no running historical query"),
        (sim.contfut_end_date(), InvalidRequest, "CONTFUT"),
        (sim.INVALID_END_DATE, InvalidRequest, "yyyymmdd-hh:mm:ss"),
        (sim.IMPLIED_TIME_ZONE, InvalidRequest, "UTC"),
        (sim.CLIENT_ID_IN_USE, GatewayUnavailable, "IB_CLIENT_ID"),
        (sim.bad_request("unknown message id 999"), InvalidRequest, "unknown message id 999"),
    ],
)
def test_the_gateways_texts_are_classified(error, cls, says):
    exc = from_ib(error.code, error.text, subject="AAPL STK SMART")
    assert type(exc) is cls
    sentence = str(exc)
    assert_one_sentence(sentence)
    assert says in sentence
    assert sentence.endswith(f"(IB {error.code}).")
    assert exc.ib_text == error.text and exc.code == error.code


def test_pacing_reads_as_the_trader_expects():
    text = str(from_ib(162, sim.pacing_violation().text, "AAPL TRADES 1 min"))
    assert text == (
        "AAPL TRADES 1 min: IB's pacing limit for small bars was hit; wait for the 10-minute "
        "window to clear; the pacer should have prevented this, so report it (IB 162)."
    )


def test_long_multiline_ib_texts_are_not_pasted_into_the_sentence():
    text = str(from_ib(10314, sim.INVALID_END_DATE.text + "\nsecond line"))
    assert_one_sentence(text)
    assert "03 15:59:00" not in text and len(text) < 200


def test_farm_notices_are_information():
    for notice in sim.FARM_NOTICES:
        assert is_informational(notice.code)
        assert lookup(notice.code, notice.text).kind is Kind.INFORMATION


def test_ambiguous_names_the_symbol_and_its_candidates():
    exc = from_ib(200, sim.ambiguous("ES").text, candidates=["ESU4 FUT CME", "ESZ4 FUT CME"])
    assert isinstance(exc, AmbiguousContract)
    assert exc.candidates == ["ESU4 FUT CME", "ESZ4 FUT CME"]
    assert str(exc).startswith("ES: the contract description matches more than one contract")
    assert "(candidates: ESU4 FUT CME, ESZ4 FUT CME)" in str(exc)

    many = AmbiguousContract(subject="ES", candidates=[f"ES{i}" for i in range(8)], code=200)
    assert "ES0, ES1, ES2, ES3, ES4 and 3 more" in str(many)
    assert_one_sentence(str(many))


def test_unknown_codes_still_get_one_sentence_with_ibs_text():
    exc = from_ib(9876, "Something new\nhappened", subject="SPY STK ARCA")
    assert type(exc) is IBRequestError
    assert str(exc).startswith("SPY STK ARCA: IB sent message 9876, which this catalogue does not")
    assert '("Something new happened")' in str(exc)
    assert str(exc).endswith("(IB 9876).")
    assert lookup(2199).kind is Kind.WARNING and lookup(9876).kind is Kind.ERROR


# --- the exceptions ---------------------------------------------------------------------------


def test_exceptions_raised_by_hand_render_their_defaults_and_survive_pickling():
    cases = [
        ContractNotFound(subject="AAPL STK SMART", code=200),
        AmbiguousContract(subject="ES", candidates=["ESU4"], code=200),
        RequestTimeout.after(60, subject="AAPL 1 min bars"),
        GatewayUnavailable(code=502),
        PacingViolation(),
        NoData(),
        IBRequestError("an odd thing happened", "restart it"),
    ]
    for exc in cases:
        assert_one_sentence(str(exc))
        assert str(exc).endswith(".")
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc)
        assert vars(back) == vars(exc)
    assert str(cases[0]) == (
        "AAPL STK SMART: no security definition was found; check the symbol, security type, "
        "exchange and currency (IB 200)."
    )
    assert str(cases[2]).startswith("AAPL 1 min bars: IB did not answer within 60 s; ")


def test_gateway_unavailable_is_one_class_and_still_a_connection_error():
    assert connection.GatewayUnavailable is GatewayUnavailable
    assert issubclass(GatewayUnavailable, ConnectionError) and issubclass(
        GatewayUnavailable, IBWError
    )
    assert issubclass(RequestTimeout, TimeoutError)
    plain = GatewayUnavailable("Nothing is listening at h:1", "start a gateway")
    assert str(plain) == "Nothing is listening at h:1: start a gateway."
    assert plain.code is None and plain.cause == "Nothing is listening at h:1"


def test_connect_keeps_its_sentence_for_a_closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before connect() tries it
    settings = connection.ConnectionSettings(port=port, timeout=5)
    with pytest.raises(GatewayUnavailable) as caught:
        connection.connect(settings)
    assert str(caught.value) == (
        f"Nothing is listening at 127.0.0.1:{port}: start a gateway (`ibw gateway`) or point "
        "IB_HOST/IB_PORT at IB Gateway or TWS."
    )
    assert one_sentence(caught.value) == str(caught.value)


# --- ib_async's RequestError ------------------------------------------------------------------


def test_from_request_error_converts_ib_asyncs_exception():
    raw = RequestError(7, 200, sim.NO_SECURITY.text)
    exc = from_request_error(raw)
    assert type(exc) is ContractNotFound and exc.code == 200 and exc.subject == "request 7"
    assert str(from_request_error(raw, "NOSUCH STK SMART")).startswith("NOSUCH STK SMART: no sec")
    assert from_request_error(RequestError(-1, 504, "Not connected")).subject == ""
    assert type(from_request_error(RequestError(3, 162, sim.pacing_violation().text))) is (
        PacingViolation
    )
    assert one_sentence(raw) == str(exc)


def test_a_real_request_error_from_the_gateway(ib):
    ib.RaiseRequestErrors = True
    contract = Stock("NOSUCHSYMBOL", "SMART", "USD")
    with pytest.raises(RequestError) as caught:
        ib.reqContractDetails(contract)
    exc = from_request_error(caught.value, E.describe_contract(contract))
    assert isinstance(exc, ContractNotFound)
    assert str(exc).startswith("NOSUCHSYMBOL STK SMART USD: no security definition was found")


def test_describe_contract():
    assert E.describe_contract(Stock("AAPL", "SMART", "USD")) == "AAPL STK SMART USD"
    assert E.describe_contract(Future("ES", "20240920", "CME")) == "ES FUT 20240920 CME"
    option = Option("SPY", "20240719", 550, "C", "SMART")
    assert E.describe_contract(option) == "SPY OPT 20240719 550C SMART"
    assert E.describe_contract(Stock()) == "STK"


# --- one_sentence for anything ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), "No answer came in time: check that the gateway is running"),
        (ConnectionRefusedError(111, "Connection refused"), "The gateway refused the connection"),
        (ConnectionResetError(104, "Connection reset by peer"), "(Connection reset by peer)"),
        (ConnectionError("Socket disconnect"), "The connection to the gateway was lost"),
        (FileNotFoundError(2, "No such file or directory", "/x/y"), "FileNotFoundError: No such "),
        (ValueError("bad\nvalue\r\n"), "ValueError: bad value"),
        (KeyError("conId"), "KeyError: 'conId'"),
        (RuntimeError(), "RuntimeError"),
    ],
)
def test_one_sentence_for_builtin_exceptions(exc, expected):
    text = one_sentence(exc)
    assert_one_sentence(text)
    assert text.startswith(expected) or expected in text


def test_one_sentence_for_groups_and_broken_exceptions():
    group = ExceptionGroup("tasks", [from_ib(200, sim.NO_SECURITY.text, "AAPL"), ValueError("x")])
    assert one_sentence(group) == (
        "AAPL: no security definition was found; check the symbol, security type, exchange and "
        "currency (IB 200) (and 1 more)."
    )

    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert one_sentence(Broken()) == "Broken"


def test_one_sentence_for_our_errors_is_their_sentence():
    exc = from_ib(162, sim.no_data("AAPL", "SMART", "TRADES").text, "AAPL")
    assert one_sentence(exc) == str(exc)


# --- properties -------------------------------------------------------------------------------

codes = st.one_of(st.sampled_from(sorted(CATALOGUE)), st.integers(-(2**40), 2**40))


@given(code=codes, text=st.text(), subject=st.text())
def test_any_code_and_text_yield_one_line(code, text, subject):
    info = lookup(code, text)
    assert issubclass(info.exception, IBWError)
    assert not (is_warning(code) and is_informational(code))
    exc = from_ib(code, text, subject)
    assert isinstance(exc, info.exception)
    sentence = str(exc)
    assert_one_sentence(sentence)
    assert sentence.endswith(f"(IB {code}).")
    assert fragment(info.fix) in sentence
    assert one_sentence(exc) == sentence


@given(
    kind=st.sampled_from([ValueError, RuntimeError, OSError, TimeoutError, ConnectionError]),
    message=st.text(),
)
def test_any_exception_yields_one_line(kind, message):
    assert_one_sentence(one_sentence(kind(message)))

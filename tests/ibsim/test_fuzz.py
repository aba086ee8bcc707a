"""Fuzzing the gateway's wire handling: junk on raw sockets beside a well-behaved ib_async client.

Every example opens a raw socket and sends one scenario: random bytes instead of (or before) the
``API\\0`` hello, a malformed hello, or a valid handshake followed by random and mutated frames
(unknown ids, known requests with too few, garbage, huge, non-numeric or non-UTF-8 fields, empty
frames), written in random chunks so that several frames share a write and frames are cut across
writes, and optionally ended by a frame whose length prefix overstates its data, a prefix beyond
0xFFFFFF, or a truncated frame. A reader thread drains the replies while the scenario is sent, so a
gateway blocked on a full socket cannot stall the sender.

Properties, after every example:

* a scenario of well-framed junk followed by ``reqCurrentTime`` gets its answer: malformed fields
  cost the sender an error (320 and friends), never its connection;
* a frame longer than 0xFFFFFF makes the gateway close the connection by itself;
* the gateway only ever sends well-formed ASCII frames, and logs no unhandled exception;
* every raw session is gone after its socket closes (no leaked session, clientId or request slot);
* the gateway thread is alive, a fresh socket still handshakes, and the ib_async client connected
  before the fuzzing still gets the pinned time, AAPL's conId and the same hourly bars.
"""

from __future__ import annotations

import gc
import itertools
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ib_async import IB, Stock

from ibsim.server import GatewayThread
from ibsim.server import framing as wire
from ibsim.server.connection import START_API
from tests.kit.gateway import NOW
from tests.kit.rawclient import read_frame, started
from tests.kit.waiting import WAIT

SOCKET_TIMEOUT = 10.0  # every raw socket operation; only a hung gateway ever reaches it
CI_EXAMPLES, FULL_SIZE_EXAMPLES = 60, 600
AAPL_CON_ID = 265598
BARS_END = "20240703-20:00:00"
_raw_client_ids = itertools.count(2_000_000)  # far from the ids conftest hands to ib_async

# ------------------------------------------------------------------- frames and fields
C12_AAPL = ["0", "AAPL", "STK", "", "0.0", "", "", "SMART", "", "USD", "", ""]
C12_ES = ["0", "ES", "FUT", "202409", "0.0", "", "50", "CME", "", "USD", "", ""]
TEMPLATES: tuple[list[str], ...] = (
    ["9", "8", "41", *C12_AAPL, "0", "", "", ""],
    ["9", "8", "42", *C12_ES, "0", "", "", ""],
    ["20", "43", *C12_AAPL, "0", BARS_END, "1 hour", "1 D", "1", "TRADES", "1", "0", ""],
    ["20", "44", *C12_ES, "0", "", "1 day", "1 W", "0", "MIDPOINT", "2", "0", ""],
    ["87", "45", *C12_AAPL, "0", "1", "TRADES", "1"],
    ["81", "46", "AA"],
    ["78", "47", "AAPL", "", "STK", str(AAPL_CON_ID)],
    ["25", "1", "43"],
    ["90", "45"],
    ["91", "26"],
    ["49", "1"],
    ["17", "1"],
    ["8", "1", "1"],
    ["6", "2", "1", "DU123456"],
    ["76", "1", "48", "DU123456", "", "1"],
    ["62", "1", "49", "All", "NetLiquidation"],
    ["7", "3", "50", "0", "", "", "", "", "", ""],
)
KNOWN_IDS = sorted({int(t[0]) for t in TEMPLATES} | {1, 2, 3, 4, 5, 16, 50, 61, 71, 92, 99, 200})
# Values a field may take besides random text: number edge cases and IB's unset spellings, and
# words that keep a mutated request valid enough to reach deeper checks. No request that could
# be valid is expensive: durations stop at a month and bars at one per minute.
EDGE_VALUES: tuple[bytes, ...] = (
    *(
        t.encode()
        for t in (
            "", "0", "-1", "1", "1.5", "1e999", "-1e400", "1E309", "nan", "inf", "-inf",
            "Infinity", "Infinite", "2147483647", "-2147483648", "9223372036854775807",
            "1.7976931348623157E308", "170141183460469231731687303715884105727", "0x10", "1_000",
            " 7 ", "٣", "true", "None",
        )
    ),
    *(b"\xff\xfe\xfd", b"\xc3\x28", b"\xed\xa0\x80", b"9" * 5000, b"1" * 4300 + b"e1"),
)  # fmt: skip
WORDS: tuple[bytes, ...] = tuple(
    t.encode()
    for t in (
        "AAPL", "ES", "SPY", "EUR", "STK", "FUT", "OPT", "CONTFUT", "BAG", "CASH", "IND", "SMART",
        "CME", "IDEALPRO", "USD", "50", "x", "C", "P", "?", "202409", "20240920",
        BARS_END, "20240703 16:00:00", "20240703 16:00:00 US/Eastern", "20240703 16:00:00 UTC",
        "20240703 16:00:00 America", "20240703 16:00:00 " + "Z" * 300, "20241340-25:61:61",
        "99991231 23:00:00 America/New_York", "00010101 00:00:00 Asia/Tokyo", "99991231-23:00:00",
        "1 secs", "30 secs", "1 min", "1 hour", "1 day", "1W", "1M", "7 mins",
        "1 D", "2 D", "1 W", "1 M", "60 S", "1800 S", "10 S", "-1 D", "0 D", "400 D", "99 Y",
        "TRADES", "MIDPOINT", "BID_ASK", "ADJUSTED_LAST", "SCHEDULE", "YIELD_LAST",
    )
)  # fmt: skip
HUGE_SIZES = (5_000, 70_000, 1_000_000)

no_nul_text = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=24)
no_nul_bytes = st.binary(max_size=16).map(lambda b: b.replace(b"\0", b"\x01"))
garbage_field = st.one_of(
    st.sampled_from(EDGE_VALUES),
    st.sampled_from(WORDS),
    no_nul_text.map(str.encode),
    no_nul_bytes,
    st.integers().map(lambda i: str(i).encode()),
    st.floats().map(lambda f: repr(f).encode()),
)
huge_field = st.builds(
    lambda size, unit: (unit * size)[:size],
    st.sampled_from(HUGE_SIZES),
    st.sampled_from([b"9", b"x", b"\xe2\x82\xac", b"1.5e3 "]),
)


def join_fields(fields: list[bytes], trailing_nul: bool = True) -> bytes:
    return b"".join(f + b"\0" for f in fields) if trailing_nul else b"\0".join(fields)


@st.composite
def random_fields(draw: st.DrawFn) -> bytes:
    """A message id (known, unknown or not a number) and random fields."""
    msg_id = draw(
        st.one_of(
            st.sampled_from(KNOWN_IDS).map(lambda i: str(i).encode()),
            st.integers(-(2**40), 2**40).map(lambda i: str(i).encode()),
            garbage_field,
        )
    )
    rest = draw(st.lists(garbage_field, max_size=30))
    return join_fields([msg_id, *rest], draw(st.booleans()))


@st.composite
def mutated_request(draw: st.DrawFn) -> bytes:
    """A valid request with a few fields replaced (garbage, edge values, huge), cut or padded."""
    fields = [f.encode() for f in draw(st.sampled_from(TEMPLATES))]
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 3]))):
        i = draw(st.integers(1, len(fields) - 1))
        fields[i] = draw(st.one_of(garbage_field, st.sampled_from(EDGE_VALUES), huge_field))
    shape = draw(st.sampled_from(["whole", "whole", "whole", "cut", "padded", "no final NUL"]))
    if shape == "cut":  # too few fields
        fields = fields[: draw(st.integers(1, len(fields) - 1))]
    elif shape == "padded":
        fields += draw(st.lists(garbage_field, min_size=1, max_size=3))
    return join_fields(fields, shape != "no final NUL")


payloads = st.one_of(
    st.just(b""),
    st.just(b"\0"),
    st.binary(max_size=200),
    random_fields(),
    mutated_request(),
    mutated_request(),
)


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


HELLO = b"API\0" + frame(b"v157..178")
PROBE = frame(b"49\x001\x00")  # reqCurrentTime: its answer proves the connection lived


@dataclass
class Scenario:
    """The bytes of one raw connection and what the gateway must do with them."""

    data: bytes
    cuts: list[float] = field(default_factory=list)  # write boundaries, as fractions of the data
    expect_probe: bool = False  # the junk was well framed: the trailing probe must be answered
    expect_close: bool = False  # an oversized frame: the gateway must hang up by itself
    handshake: bool = False  # a valid hello was sent: the first reply must be the handshake

    def writes(self) -> Iterator[bytes]:
        edges = sorted({int(c * len(self.data)) for c in self.cuts} | {0, len(self.data)})
        for a, b in itertools.pairwise(edges):
            yield self.data[a:b]


@st.composite
def hello_junk(draw: st.DrawFn) -> Scenario:
    """Random bytes instead of or before the hello, or a malformed hello."""
    kind = draw(st.sampled_from(["bytes", "before", "payload", "version", "oversize", "short"]))
    if kind == "bytes":
        return Scenario(draw(st.binary(max_size=64)))
    if kind == "before":
        return Scenario(draw(st.binary(min_size=1, max_size=16)) + HELLO)
    if kind == "payload":
        return Scenario(b"API\0" + frame(draw(st.binary(max_size=64))))
    if kind == "version":
        text = draw(st.from_regex(r"\Av-?[0-9]{0,5}(\.\.-?[0-9]{0,5})?( [ -~]{0,9})?\Z"))
        return Scenario(b"API\0" + frame(text.encode()))
    if kind == "oversize":
        size = draw(st.integers(wire.MAX_FRAME + 1, 2**32 - 1))
        data = b"API\0" + struct.pack(">I", size) + draw(st.binary(max_size=32))
        return Scenario(data, expect_close=True)
    size = draw(st.integers(1, 4096))
    return Scenario(b"API\0" + struct.pack(">I", size) + draw(st.binary(max_size=size - 1)))


def not_start_api(payload: bytes) -> bool:
    """Before startApi the gateway ignores all but msg 71, whose bad forms close by design."""
    return wire.decode_fields(payload)[:1] != [str(START_API)]


@st.composite
def session_junk(draw: st.DrawFn) -> Scenario:
    """A valid handshake; junk frames before and/or after startApi; a probe; maybe a bad tail."""
    start = frame(join_fields([b"71", b"2", str(next(_raw_client_ids)).encode(), b""]))
    before = draw(st.lists(payloads.filter(not_start_api), max_size=4))
    after = draw(st.lists(payloads, max_size=8))
    data = HELLO + b"".join(map(frame, before)) + start + b"".join(map(frame, after)) + PROBE
    tail = draw(st.sampled_from(["none", "none", "none", "lying", "oversize", "truncated"]))
    if tail == "lying":  # a prefix larger than the data, then the close
        body = draw(st.binary(max_size=64))
        data += struct.pack(">I", len(body) + draw(st.integers(1, 2**20))) + body
    elif tail == "oversize":
        data += struct.pack(">I", draw(st.integers(wire.MAX_FRAME + 1, 2**32 - 1)))
        data += draw(st.binary(max_size=32))
    elif tail == "truncated":
        data += frame(draw(payloads) + b"x")[: -draw(st.integers(1, 4))]
    cuts = draw(st.lists(st.floats(0, 1), max_size=6))
    return Scenario(data, cuts, tail == "none", tail == "oversize", handshake=True)


scenarios = st.one_of(hello_junk(), session_junk(), session_junk())


# ------------------------------------------------------------------- the raw connection
@dataclass
class Outcome:
    received: bytes = b""
    send_failed: bool = False  # the gateway hung up while we were still writing
    read_error: BaseException | None = None


def play(port: int, scenario: Scenario) -> Outcome:
    """Send the scenario's writes while a thread drains replies; then close and collect them."""
    outcome = Outcome()
    chunks: list[bytes] = []
    sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
    sock.settimeout(SOCKET_TIMEOUT)

    def drain() -> None:
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass  # the gateway closed with our bytes unread: an RST instead of a FIN
        except OSError as exc:  # a timeout: the gateway neither answered nor closed
            outcome.read_error = exc

    reader = threading.Thread(target=drain, name="fuzz-reader", daemon=True)
    reader.start()
    try:
        for chunk in scenario.writes():
            sock.sendall(chunk)
        if not scenario.expect_close:
            sock.shutdown(socket.SHUT_WR)  # an oversized frame must be closed by the gateway
    except (BrokenPipeError, ConnectionResetError):
        outcome.send_failed = True
    finally:
        reader.join(SOCKET_TIMEOUT + 5)
        sock.close()
    assert not reader.is_alive(), "the reply reader did not finish"
    outcome.received = b"".join(chunks)
    return outcome


def replies(data: bytes) -> list[list[str]]:
    """Every complete frame the gateway sent; each must be NUL-terminated ASCII."""
    frames = []
    buffer = bytearray(data)
    for payload in wire.split_frames(buffer):
        assert payload.isascii(), f"non-ASCII reply {payload[:80]!r}"
        assert payload.endswith(b"\0"), f"reply without a final NUL {payload[:80]!r}"
        frames.append(wire.decode_fields(payload))
    return frames


def check_outcome(scenario: Scenario, outcome: Outcome) -> None:
    assert outcome.read_error is None, f"no reply and no close: {outcome.read_error!r}"
    frames = replies(outcome.received)
    if scenario.handshake:
        assert frames, "a valid hello got no handshake reply"
        version, stamp = frames[0]
        assert version == "178" and stamp.endswith(" EST"), frames[0]
    elif frames:  # a malformed hello may still parse as v<min>..<max>: the reply is 2 fields
        assert len(frames[0]) == 2 and int(frames[0][0]) <= 178, frames[0]
    for fields in frames[1:]:
        assert fields and fields[0].lstrip("-").isdigit(), fields[:5]
    if scenario.expect_probe:  # one assertion: whether our send or the probe fails is timing
        times = [f[2] for f in frames if f[0] == "49"]
        answered = not outcome.send_failed and times[-1:] == [str(int(NOW.timestamp()))]
        assert answered, "the gateway hung up on well-framed junk: the probe got no answer"


# ------------------------------------------------------------------- the gateway's health
class ErrorLog(logging.Handler):
    """Collects error records of asyncio and the gateway: an unhandled exception in a session or
    a task, or a request that failed inside the gateway (a bug, even though it was answered)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def asyncio_errors() -> Iterator[ErrorLog]:
    gc.collect()  # earlier tests' garbage must not log into this one
    handler = ErrorLog()
    loggers = [logging.getLogger("asyncio"), logging.getLogger("ibsim")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


def state(gw: GatewayThread) -> tuple[int, frozenset[int], frozenset[tuple[int, int]]]:
    """Open sessions, registered clientIds and open request slots, read on the gateway's loop."""
    g = gw.gateway
    return gw.call(lambda: (len(g._connections), frozenset(g.clients), frozenset(g.open_requests)))


def wait_for_state(gw: GatewayThread, expected: tuple, timeout: float = WAIT) -> None:
    """Poll until the gateway has dropped every raw session (bounded: a leak fails the test)."""
    deadline = time.monotonic() + timeout
    while (current := state(gw)) != expected and time.monotonic() < deadline:
        time.sleep(0.005)
    assert current == expected, f"sessions/clients/requests leaked: {current} != {expected}"


def handshakes(gw: GatewayThread) -> bool:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=SOCKET_TIMEOUT) as sock:
        sock.settimeout(SOCKET_TIMEOUT)
        sock.sendall(HELLO)
        return wire.decode_fields(read_frame(sock))[0] == "178"


def hourly_bars(ib: IB) -> list:
    """The bars as a plain list: a BarDataList compares by identity."""
    return list(
        ib.reqHistoricalData(
            Stock("AAPL", "SMART", "USD"), BARS_END, "1 D", "1 hour", "TRADES", True, timeout=30
        )
    )


def assert_healthy(gw: GatewayThread, ib: IB, baseline_bars: list) -> None:
    assert gw._thread.is_alive(), "the gateway thread died"
    assert handshakes(gw)
    assert ib.isConnected()
    assert ib.reqCurrentTime() == NOW
    details = ib.reqContractDetails(Stock("AAPL", "SMART", "USD"))
    assert details and details[0].contract.conId == AAPL_CON_ID
    assert hourly_bars(ib) == baseline_bars


# ------------------------------------------------------------------- the tests
@pytest.mark.slow
def test_junk_on_raw_sockets_never_hurts_the_gateway_or_a_good_client(
    make_gateway: Callable[..., GatewayThread],
    connect: Callable[[GatewayThread], IB],
    asyncio_errors: ErrorLog,
    request: pytest.FixtureRequest,
) -> None:
    gw = make_gateway()
    ib = connect(gw)
    baseline_bars = hourly_bars(ib)
    assert [b.date.hour for b in baseline_bars] == [9, 10, 11, 12]  # 07-03 closes at 13:00
    baseline_state = state(gw)
    examples = FULL_SIZE_EXAMPLES if request.config.getoption("--full-size") else CI_EXAMPLES

    # @given wraps an inner function, so no function-scoped fixture is reused behind
    # hypothesis' back (that health check cannot fire): one gateway and one client, created
    # once, see every example, which is the point.
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],  # a check on timing; CI machines vary
    )
    @given(scenario=scenarios)
    def fuzz(scenario: Scenario) -> None:
        asyncio_errors.records.clear()  # each example answers for its own errors
        outcome = play(gw.port, scenario)
        check_outcome(scenario, outcome)
        wait_for_state(gw, baseline_state)
        assert_healthy(gw, ib, baseline_bars)  # many round trips: any error log is in by now
        assert not asyncio_errors.records, asyncio_errors.records[0].getMessage()

    fuzz()
    assert_healthy(gw, ib, baseline_bars)


# ------------------------------------------------------------------- what the fuzzing found
def _details(contract: list[str]) -> list[str]:
    return ["9", "8", "1", *contract, "0", "", "", ""]


def _hist(end: str, contract: list[str] = C12_AAPL, duration: str = "1 D") -> list[str]:
    return ["20", "7", *contract, "0", end, "1 hour", duration, "1", "TRADES", "1", "0", ""]


# Each of these cost its sender the connection, with an unhandled exception in the session,
# until ClientSession._dispatch answered ValueError, ArithmeticError and OSError with a 320
# (the end dates deserve IB's 10314 from rules.parse_end; either error passes here).
FOUND: dict[str, list[str]] = {
    "reqId 1e400: OverflowError in wire.as_int": ["81", "1e400", "AA"],
    "conId 1 x 4300 + e1: OverflowError in wire.as_int": _details(
        ["1" * 4300 + "e1", *C12_AAPL[1:]]
    ),
    "future with multiplier x: ValueError in catalog._matches": _details(
        [*C12_ES[:6], "x", *C12_ES[7:]]
    ),
    "zone naming a tzdata folder: IsADirectoryError in rules.parse_end": _hist(
        "20240703 16:00:00 America"
    ),
    "zone of 300 characters: OSError (name too long) in rules.parse_end": _hist(
        "20240703 16:00:00 " + "Z" * 300
    ),
    "end past year 9999 in UTC: OverflowError in rules.parse_end": _hist(
        "99991231 23:00:00 America/New_York"
    ),
}


@pytest.mark.parametrize("fields", list(FOUND.values()), ids=list(FOUND))
def test_frames_the_fuzzing_found_get_an_error_and_the_connection_lives(
    gateway: GatewayThread, asyncio_errors: ErrorLog, fields: list[str]
) -> None:
    sock = started(gateway, next(_raw_client_ids))
    try:
        sock.settimeout(SOCKET_TIMEOUT)
        sock.sendall(frame(join_fields([f.encode() for f in fields])) + PROBE)
        seen = []
        while (reply := wire.decode_fields(read_frame(sock)))[0] != "49":
            seen.append(reply)
    finally:
        sock.close()
    notices = {"2104", "2106", "2158", "2174"}
    assert any(f[0] == "4" and f[3] not in notices for f in seen), seen  # 320, or IB's own code
    assert not asyncio_errors.records, asyncio_errors.records[0].getMessage()


def test_an_unreadable_client_id_in_start_api_closes_quietly(
    gateway: GatewayThread, asyncio_errors: ErrorLog
) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=SOCKET_TIMEOUT) as sock:
        sock.settimeout(SOCKET_TIMEOUT)
        sock.sendall(HELLO)
        read_frame(sock)
        sock.sendall(frame(join_fields([b"71", b"2", b"1e999", b""])))
        assert sock.recv(1) == b""
    wait_for_state(gateway, state(gateway))
    assert not asyncio_errors.records, asyncio_errors.records[0].getMessage()


def test_a_request_that_fails_while_computing_still_gets_an_answer(
    make_gateway: Callable[..., GatewayThread],
) -> None:
    gw = make_gateway()
    sock = started(gw, next(_raw_client_ids))
    try:
        sock.settimeout(3.0)  # the answer takes milliseconds; a timeout means none is coming
        sock.sendall(wire.encode(_hist("00010105-00:00:00", duration="1 W")))
        while True:
            reply = wire.decode_fields(read_frame(sock))
            if reply[0] == "17" or (reply[0] == "4" and reply[2] == "7"):
                break
    finally:
        sock.close()

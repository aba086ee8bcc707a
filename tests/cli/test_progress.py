"""Progress outside a terminal (issue 14): a line per request and per pacing wait, so a log or a
supervisor never sees `ibw backfill` go quiet for minutes without a reason."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from cli.progress import WAIT_EVERY, PlainProgress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def plain(total: int = 3) -> tuple[PlainProgress, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    console = Console(file=out, width=200)
    return PlainProgress(console, total, clock), out, clock


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_each_request_is_one_numbered_line():
    progress, out, _ = plain()
    progress.request("AAPL 5 secs", "3600 S of 5 secs ending now")
    progress.request("AAPL 5 secs", "3600 S of 5 secs ending 20240709-20:00:00")
    assert lines(out) == [
        "[1/3] AAPL 5 secs: 3600 S of 5 secs ending now",
        "[2/3] AAPL 5 secs: 3600 S of 5 secs ending 20240709-20:00:00",
    ]


def test_the_pacers_slack_says_nothing_a_wait_says_why():
    progress, out, _ = plain()
    progress.request("AAPL", "1 D")
    progress.waiting(0.05)  # slack between reservations
    assert len(lines(out)) == 1
    progress.waiting(42.0)
    assert lines(out)[-1] == (
        "waiting for IB's pacing window (1 of 3 requests sent; next try in 42.0 s)"
    )


def test_short_sleeps_that_add_up_to_a_wait_are_reported_once_then_every_so_often():
    progress, out, clock = plain()

    def said() -> int:
        return sum("waiting" in line for line in lines(out))

    progress.waiting(0.5)  # polling for an open slot, half a second at a time
    assert said() == 0
    clock.now = 0.5
    progress.waiting(0.5)  # a second in all: worth a line
    assert said() == 1
    clock.now = 0.5 + WAIT_EVERY - 0.5
    progress.waiting(0.5)
    assert said() == 1
    clock.now = 0.5 + WAIT_EVERY
    progress.waiting(0.5)
    assert said() == 2


def test_the_next_request_starts_a_new_wait():
    progress, out, _ = plain()
    progress.waiting(5.0)
    progress.request("SPY", "1 D")
    progress.waiting(5.0)
    assert [line.split(" (")[0] for line in lines(out)] == [
        "waiting for IB's pacing window",
        "[1/3] SPY: 1 D",
        "waiting for IB's pacing window",
    ]


@pytest.mark.slow  # a real `ibw backfill` process
def test_a_backfill_into_a_pipe_says_each_request_and_each_wait_while_it_runs(
    compressed_gateway, start_backfill
):
    # 10 days of 5-s bars for two stocks: more requests than one (compressed) window carries
    process = start_backfill(history="10d")  # stdout is a pipe, not a terminal
    assert process.stdout is not None
    # planning first asks where each series' data starts, paced too, and says so
    said = process.stdout.readline()
    assert said.startswith("Asking IB where the data of 2 contract series starts"), said
    heads = [process.stdout.readline() for _ in range(2)]
    for n, line in enumerate(heads, 1):
        assert re.fullmatch(rf"\[{n}/2\] (AAPL|MSFT) 5 secs.*: head timestamp\n", line), line
    first = process.stdout.readline()
    assert re.fullmatch(r"\[1/(\d+)\] (AAPL|MSFT) 5 secs.*: \d+ S of 5 secs ending .+\n", first)
    assert process.poll() is None  # said at the first request, not at the end
    rest = process.stdout.read()
    assert process.wait(timeout=120) == 0, first + rest
    output = (first + rest).splitlines()
    total = int(re.match(r"\[1/(\d+)\]", first).group(1))
    numbered = [line for line in output if line.startswith("[")]
    assert [int(re.match(r"\[(\d+)/", line).group(1)) for line in numbered] == list(
        range(1, total + 1)
    )
    waits = [line for line in output if line.startswith("waiting for IB's pacing window")]
    assert waits, "\n".join(output)
    assert output[-1].startswith("Backfilled 2 series with")

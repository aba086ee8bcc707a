"""The journal's doorbell: a ring reaches the service of its own home only, ringing with
nobody listening is silent, and the API rings after each committed write only."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from live import api
from live.doorbell import Doorbell, address, ring
from live.intents import OrderIntent
from live.journal import JournalError
from tests.kit.waiting import until

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="abstract Unix sockets are Linux's"
)


def test_a_ring_wakes_the_service_of_its_home_only(tmp_path: Path) -> None:
    mine, other = tmp_path / "mine", tmp_path / "other"
    assert address(mine) != address(other)
    assert address(mine) == address(tmp_path / "x" / ".." / "mine")  # one home, one name

    async def scenario() -> None:
        bell = Doorbell(mine)
        bell.open()
        try:
            ring(other)
            ring(mine)
            await until(bell.rung.is_set, "the ring arrives", 10)
            bell.rung.clear()
            await asyncio.sleep(0)  # the drained socket holds nothing more
            assert not bell.rung.is_set()
            ring(mine)
            await until(bell.rung.is_set, "the second ring arrives", 10)
        finally:
            bell.close()

    loop = asyncio.new_event_loop()  # its own: the session's default loop stays as it is
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


def test_ringing_with_nobody_listening_is_silent(tmp_path: Path) -> None:
    ring(tmp_path / "nobody")  # no exception, no wait


def test_the_api_rings_after_a_write_and_not_after_a_refused_one(tmp_path: Path) -> None:
    intent = OrderIntent(key="k1", account="DU1", con_id=1, action="BUY", quantity=1)

    async def scenario() -> None:
        bell = Doorbell(tmp_path)
        bell.open()
        try:
            api.submit(intent, tmp_path)
            await until(bell.rung.is_set, "the write rings", 10)
            bell.rung.clear()
            with pytest.raises(JournalError):
                api.cancel("missing", tmp_path)
            await asyncio.sleep(0.05)  # a ring would be in the socket already: sendto is sync
            assert not bell.rung.is_set()
        finally:
            bell.close()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()

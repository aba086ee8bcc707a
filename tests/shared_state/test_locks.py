"""The locks on both backends, against a real PostgreSQL server and real files: one holder at a
time, freed the moment the holder's process dies (kill -9 included), and one sentence, without
the password, when the server is out of reach."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared_state.database import SharedStateError, advisory_key
from shared_state.locks import try_lock
from shared_state.settings import POSTGRES_URL, redacted
from tests.kit.processes import ROOT, free_port
from tests.kit.waiting import poll_until

HOLDER = """
import sys
from pathlib import Path
from shared_state.locks import try_lock

with try_lock(Path(sys.argv[1]), sys.argv[2]) as held:
    print("held" if held else "refused", flush=True)
    sys.stdin.read()  # until the test ends it
"""


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, monkeypatch) -> str:
    """The lock backend under test, chosen as users choose it: IBW_POSTGRES_URL set or not."""
    monkeypatch.delenv(POSTGRES_URL, raising=False)
    if request.param == "postgres":
        monkeypatch.setenv(POSTGRES_URL, request.getfixturevalue("postgres_url"))
    return request.param


def test_one_holder_at_a_time_and_free_once_released(backend, tmp_path: Path):
    with (
        try_lock(tmp_path, "bars AAPL") as first,
        try_lock(tmp_path, "bars AAPL") as second,
        try_lock(tmp_path, "bars MSFT") as other,
    ):
        assert (bool(first), bool(second), bool(other)) == (True, False, True)
    with try_lock(tmp_path, "bars AAPL") as again:
        assert again


def test_a_killed_holder_frees_the_lock_at_once(backend, tmp_path: Path):
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), "bars ES"],
        cwd=ROOT,
        env=dict(os.environ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout.readline().strip() == "held"
            with try_lock(tmp_path, "bars ES") as taken:
                assert not taken
            holder.send_signal(signal.SIGKILL)  # by its pid: no chance to let go
            holder.wait(timeout=30)
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait(timeout=30)

    def free() -> bool:
        with try_lock(tmp_path, "bars ES") as held:
            return held

    poll_until(free, "the dead holder's lock to be freed", timeout=30, every=0.1)


def test_a_lock_the_server_dropped_stops_its_holder_in_one_sentence(
    postgres, postgres_url, tmp_path, monkeypatch
):
    """A restart frees every advisory lock while the holder still runs: its next write must not
    go ahead, since another process may hold the lock by then."""
    monkeypatch.setenv(POSTGRES_URL, postgres_url)
    with try_lock(tmp_path, "bars ES") as held:
        held.confirm()  # held: nothing to say
        postgres.restart()
        with try_lock(tmp_path, "bars ES") as taken:
            assert taken  # the lock lapsed: another holder gets it
        with pytest.raises(SharedStateError) as failure:
            held.confirm()
    sentence = failure.value.sentence
    assert sentence.startswith("The shared state in PostgreSQL at postgresql://postgres@127.0.0.1:")
    assert "dropped the lock on bars ES" in sentence and sentence.endswith("run again to resume.")


def test_a_file_lock_needs_no_confirmation(tmp_path, monkeypatch):
    monkeypatch.delenv(POSTGRES_URL, raising=False)
    with try_lock(tmp_path, "bars ES") as held:
        held.confirm()


def test_an_unreachable_server_is_one_sentence_without_the_password(tmp_path, monkeypatch):
    url = f"postgresql://ibw:s3cret@127.0.0.1:{free_port()}/ibw"  # nothing listens there
    monkeypatch.setenv(POSTGRES_URL, url)
    with pytest.raises(SharedStateError) as failure, try_lock(tmp_path, "bars AAPL"):
        pass
    sentence = str(failure.value)
    assert sentence.startswith("The shared state in PostgreSQL at postgresql://ibw:***@127.0.0.1:")
    assert sentence.endswith("check that the server runs and that IBW_POSTGRES_URL points at it.")
    assert "s3cret" not in sentence and "\n" not in sentence


def test_redacted_hides_only_the_password():
    assert redacted("postgresql://u:pw@db:5432/x?sslmode=require") == (
        "postgresql://u:***@db:5432/x?sslmode=require"
    )
    assert redacted("postgresql://db/x") == "postgresql://db/x"


def test_advisory_keys_are_stable_signed_64_bit_integers():
    key = advisory_key("bars AAPL")
    assert key == advisory_key("bars AAPL") != advisory_key("bars MSFT")
    assert -(2**63) <= key < 2**63

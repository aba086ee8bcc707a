"""The Python API's journal connections: one per thread and journal file, kept between calls,
and never one to a file that is gone."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from live import api
from live.intents import OrderIntent
from live.journal import Journal


def intent(key: str) -> OrderIntent:
    return OrderIntent(key=key, account="DU1", con_id=1, action="BUY", quantity=1)


def test_a_home_made_again_gets_the_intent_in_its_new_journal(tmp_path: Path) -> None:
    api.submit(intent("first"), tmp_path)
    shutil.rmtree(tmp_path / "live")  # the user starts over under the same home
    api.submit(intent("second"), tmp_path)
    with Journal.open(tmp_path) as journal:
        assert [row.key for row in journal.intents()] == ["second"]


def test_each_thread_writes_through_its_own_connection(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(20):
                api.submit(intent(f"t{n}-{i}"), tmp_path)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with Journal.open(tmp_path) as journal:
        assert len(journal.intents()) == 60

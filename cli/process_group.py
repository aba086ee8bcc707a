"""Dagster's processes as one process group, started and stopped together by `ibw dev` and
`ibw serve`.

A group of its own: a terminal's Ctrl-C reaches `ibw` alone (which then stops the group in
order), and every process Dagster starts (webserver, daemon, code servers, run workers) is found
by the group's id, so none outlives the command. The group stays in `ibw`'s session: a process
may only join a group of its own session."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

STOP_TIMEOUT = 30.0  # Dagster's own shutdown takes ~6 s (its daemon's threads: 5 s)
POLL = 0.1  # seconds between two looks at the children: supervision, not a test's sync
PROCESSES = Path("/proc")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: the terminal closed


def catch_stop_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread (a shell may have
    started `ibw` ignoring SIGINT, and Dagster's processes would inherit that)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.default_int_handler)


class ProcessGroup:
    """Commands started in one new process group, the first one leading it."""

    def __init__(self, cwd: Path, env: Mapping[str, str]) -> None:
        self.cwd, self.env = cwd, dict(env)
        self.children: list[subprocess.Popen] = []

    @property
    def id(self) -> int:
        return self.children[0].pid

    def start(self, command: Sequence[str]) -> subprocess.Popen:
        group = self.id if self.children else 0  # 0: a new group, led by this first child
        child = subprocess.Popen(command, cwd=self.cwd, env=self.env, process_group=group)
        self.children.append(child)
        return child

    def ended(self) -> subprocess.Popen | None:
        """A child that has exited, if any."""
        return next((c for c in self.children if c.poll() is not None), None)

    def stop(self) -> None:
        """SIGTERM to each child, which Dagster reads as an interrupt: the webserver and the
        daemon (or `dagster dev`, which tells both) stop their code servers in order. Then
        SIGTERM to the group for what outlived them (a run in flight records its failure), and
        SIGKILL for what still runs after STOP_TIMEOUT. A first signal to the whole group would
        race Dagster's own shutdown: a code server ended under its manager is "restarted", with
        a warning."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        if not self.children:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        group_told = False
        with contextlib.suppress(ProcessLookupError):  # an empty group: nothing left to stop
            while any(c.poll() is None for c in self.children) or runs_in_group(self.id):
                if time.monotonic() > deadline:
                    os.killpg(self.id, signal.SIGKILL)
                    break
                if not group_told and all(c.poll() is not None for c in self.children):
                    os.killpg(self.id, signal.SIGTERM)
                    group_told = True
                time.sleep(POLL)
        for child in self.children:
            child.wait()


def runs_in_group(group: int) -> bool:
    """Whether a process of `group` still runs; an ended one waiting to be reaped does not."""
    if not PROCESSES.is_dir():  # no /proc: any member, ended or not
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in PROCESSES.glob("[0-9]*/stat"):
        try:  # "pid (name) state ppid pgrp ...": the name may hold spaces and parentheses
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue  # ended while we looked
        if int(pgrp) == group and state != "Z":
            return True
    return False

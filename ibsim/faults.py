"""Faults of IB's servers and of the Gateway, on demand or from a script (IB's message codes
1100-1102 and 2103-2106, and IB Gateway's daily restart).

`GatewayFaults` holds the fault methods of ibsim.server.Gateway. They run on the gateway's loop
(tests: `gw.call(gw.gateway.connectivity_lost)`) and touch only state the Gateway owns:
- `connectivity_lost` / `connectivity_restored`: IB's link (1100, then 1102 or 1101). While it is
  down no ticks or bars go out and order news is held (`ClientSession.notify`); 1101 drops every
  stream without a word, as IB does, so clients must resubscribe.
- `farm_status`: a farm notice (2103-2108, 2157, 2158) on demand.
- `drop_clients`: hang up on clients; the gateway keeps listening (unlike `restart`).
- `stall`: the gateway neither reads nor sends for a while, then carries on.
A fault script (`load_faults`, `ibw gateway --faults FILE`) is a YAML list of entries such as
`{after: 30, fault: connectivity_lost}` or `{every: 600, fault: drop_clients}`: `after` and
`every` are real seconds from the gateway's start, the other keys are the fault's arguments.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ibsim import errors, streaming
from ibsim.errors import IBError

if TYPE_CHECKING:
    from ibsim.session import ClientSession

log = logging.getLogger("ibsim")

# Each fault a script may name, with the arguments it takes (and their types).
ARGUMENTS: dict[str, dict[str, type]] = {
    "connectivity_lost": {},
    "connectivity_restored": {"data_kept": bool},
    "farm_status": {"code": int, "client_id": int},
    "drop_clients": {"client_id": int},
    "stall": {"seconds": float, "client_id": int},
    "restart": {"refuse_for": float},
}
REQUIRED = {"farm_status": ("code",), "stall": ("seconds",)}
EXAMPLE = "`- {after: 30, fault: connectivity_lost}`"


class GatewayFaults:
    """The fault methods of ibsim.server.Gateway, kept apart from serving."""

    clients: dict[int, ClientSession]
    _sessions: set[ClientSession]
    link_up: bool
    fault_tasks: set[asyncio.Task]

    def _targets(self, client_id: int | None) -> list[ClientSession]:
        if client_id is None:
            return list(self.clients.values())
        session = self.clients.get(client_id)
        return [] if session is None else [session]

    def _tell(self, notices: Iterable[IBError], client_id: int | None = None) -> None:
        for session in self._targets(client_id):
            for notice in notices:
                session.send_error(-1, notice)

    def connectivity_lost(self) -> None:
        """1100 and the farms broken: streams stop, order news is held until the link is back."""
        if not self.link_up:
            return
        for session in self._targets(None):
            streaming.catch_up(session)  # what came due while the link was up still goes out
        self.link_up = False
        log.info("fault: connectivity to IB lost")
        self._tell((errors.CONNECTIVITY_LOST, *errors.FARMS_BROKEN))

    def connectivity_restored(self, data_kept: bool = True) -> None:
        """1102 (`data_kept`: streams carry on) or 1101 (every stream of every client is gone,
        keepUpToDate bars too, and nobody is told), the farms OK, then the held order news."""
        if self.link_up:
            log.info("fault: connectivity_restored ignored, the link to IB is up")
            return
        sessions = self._targets(None)
        for session in sessions:
            streaming.catch_up(session)  # what came due while the link was down is lost
        self.link_up = True
        log.info("fault: connectivity to IB restored, data %s", "kept" if data_kept else "lost")
        for session in sessions:
            session.send_error(
                -1, errors.RESTORED_DATA_KEPT if data_kept else errors.RESTORED_DATA_LOST
            )
            if not data_kept:
                _drop_streams(session)
            for notice in errors.FARMS_OK:
                session.send_error(-1, notice)
            session.release_held()

    def farm_status(self, code: int, client_id: int | None = None) -> None:
        """Send the farm notice `code` (errors.FARM_STATUS) to one client or all."""
        if code not in errors.FARM_STATUS:
            known = ", ".join(map(str, errors.FARM_STATUS))
            raise ValueError(f"Farm status {code} is unknown: use one of {known}.")
        self._tell((errors.FARM_STATUS[code],), client_id)

    def drop_clients(self, client_id: int | None = None) -> int:
        """Close the socket of one client (or of every connection); returns how many."""
        sessions = list(self._sessions) if client_id is None else self._targets(client_id)
        log.info("fault: dropping %s connection(s)", len(sessions))
        for session in sessions:
            session.disconnect()
        return len(sessions)

    def stall(self, seconds: float, client_id: int | None = None) -> int:
        """For `seconds` real seconds the gateway neither reads from nor writes to one client
        (or all); then requests that arrived meanwhile are answered, what the gateway sent
        meanwhile goes out, and streamed windows that came due meanwhile are lost."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        sessions = self._targets(client_id)
        log.info("fault: stalling %s client(s) for %s s", len(sessions), seconds)
        for session in sessions:
            streaming.catch_up(session)
            session.stall(until)
            loop.call_at(until, _end_stall, session, until)
        return len(sessions)

    def run_faults(self, script: Sequence[Fault]) -> list[asyncio.Task]:
        """Run a fault script from now on, as tasks of this gateway (cancelled when it stops)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        tasks = [self._track(loop.create_task(self._run_fault(f, started))) for f in script]
        return tasks

    def _track(self, task: asyncio.Task) -> asyncio.Task:
        self.fault_tasks.add(task)
        task.add_done_callback(self.fault_tasks.discard)
        return task

    async def _run_fault(self, fault: Fault, started: float) -> None:
        loop = asyncio.get_running_loop()
        at = started + (fault.after if fault.after is not None else fault.every or 0.0)
        while True:
            await asyncio.sleep(max(0.0, at - loop.time()))
            log.info("fault script: %s %s", fault.fault, dict(fault.params) or "")
            try:
                result = getattr(self, fault.fault)(**dict(fault.params))
                if inspect.isawaitable(result):  # a restart: it runs on while the script goes on
                    self._track(asyncio.ensure_future(result))
            except Exception:
                log.exception("fault script: %s failed", fault.fault)
            if fault.every is None:
                return
            at += fault.every


def _end_stall(session: ClientSession, until: float) -> None:
    if session.stalled_until > until:
        return  # a later stall runs on
    streaming.catch_up(session)  # still stalled: what came due is lost
    session.unstall()


def _drop_streams(session: ClientSession) -> None:
    """Forget every market data, tick-by-tick, real-time bar and keepUpToDate subscription."""
    session.subscriptions.clear()
    for req_id in list(session.streaming):
        task = session.historical.pop(req_id, None)
        if task is not None:
            task.cancel()  # its own cleanup frees the open-request slot


# ------------------------------------------------------------------- scripts
class FaultScriptError(ValueError):
    """A fault script that cannot be read; the message is one sentence."""


@dataclass(frozen=True)
class Fault:
    """One entry of a fault script: the Gateway method, when, and its arguments."""

    fault: str
    after: float | None = None  # real seconds from the gateway's start to the first time
    every: float | None = None  # then again every so many seconds
    params: tuple[tuple[str, object], ...] = ()


def load_faults(path: str | Path) -> tuple[Fault, ...]:
    """The fault script in a YAML file; FaultScriptError (one sentence) if it cannot be read."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FaultScriptError(
            f"Cannot read the fault script {path} ({exc.strerror or exc})."
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise FaultScriptError(f"The fault script {path} is not valid YAML{at}.") from None
    return parse_faults(data, f"The fault script {path}")


def parse_faults(data: object, source: str = "The fault script") -> tuple[Fault, ...]:
    """Check a script's entries (a list of mappings) and return them as Faults."""
    if not isinstance(data, list) or not data:
        raise FaultScriptError(f"{source} is not a list of faults like {EXAMPLE}.")
    return tuple(_entry(item, f"{source}, entry {n}") for n, item in enumerate(data, 1))


def _entry(item: object, where: str) -> Fault:
    if not isinstance(item, Mapping):
        raise FaultScriptError(f"{where} is not a mapping like {EXAMPLE[2:]}.")
    fields = dict(item)
    name = fields.pop("fault", None)
    if name not in ARGUMENTS:
        raise FaultScriptError(
            f"{where} names the fault {name!r}, which is none of {', '.join(ARGUMENTS)}."
        )
    after = _number(fields.pop("after", None), "after", where)
    every = _number(fields.pop("every", None), "every", where)
    if after is None and every is None:
        raise FaultScriptError(f"{where} needs `after` or `every` (real seconds from the start).")
    if every == 0:
        raise FaultScriptError(f"{where} has `every: 0`; repeat after a positive number of s.")
    params = {key: _argument(name, key, value, where) for key, value in fields.items()}
    missing = [key for key in REQUIRED.get(name, ()) if key not in params]
    if missing:
        raise FaultScriptError(f"{where} lacks the argument {missing[0]!r} that {name} needs.")
    if name == "farm_status" and params["code"] not in errors.FARM_STATUS:
        known = ", ".join(map(str, errors.FARM_STATUS))
        raise FaultScriptError(
            f"{where} has farm status code {params['code']}; use one of {known}."
        )
    return Fault(name, after, every, tuple(sorted(params.items())))


def _number(value: object, key: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultScriptError(f"{where} has `{key}: {value}`, not a number of seconds >= 0.")
    return float(value)


def _argument(name: str, key: str, value: object, where: str) -> object:
    kind = ARGUMENTS[name].get(key)
    if kind is None:
        takes = ", ".join(ARGUMENTS[name]) or "no arguments"
        raise FaultScriptError(f"{where} gives {name} the unknown argument {key!r} ({takes}).")
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    if not ok:
        raise FaultScriptError(f"{where} has `{key}: {value}`, which is not a {kind.__name__}.")
    return float(value) if kind is float else value

"""Faults of IB's servers and of the Gateway that act on the connected clients, on demand or
from a script (IB's message codes 1100-1102 and 2103-2106, and IB Gateway's daily restart).

`GatewayFaults` holds the fault methods of ibsim.server.gateway.Gateway. They run on the
gateway's loop (tests: `gw.call(gw.gateway.connectivity_lost)`) and touch only the gateway's
clients and state:
- `connectivity_lost` / `connectivity_restored`: IB's link (1100, then 1102 or 1101). While it is
  down no ticks, bars or account refreshes go out and order news is held (`Connection.notify`);
  1101 drops every stream and account subscription without a word, as IB does ("market and
  account data subscription requests must be resubmitted", IB's message codes page), so
  clients must resubscribe.
- `farm_status`: a farm notice (2103-2108, 2157, 2158) on demand.
- `drop_clients`: hang up on clients; the gateway keeps listening (unlike `restart`).
- `stall`: the gateway neither reads nor sends for a while, then carries on.
`run_faults` runs a fault script (ibsim.fault_script).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterable, Sequence

from ibsim.fault_script import Fault
from ibsim.handlers import streaming
from ibsim.market import errors
from ibsim.market.errors import IBError
from ibsim.server.connection import Connection
from ibsim.state import GatewayState

log = logging.getLogger("ibsim")


class GatewayFaults:
    """The fault methods of ibsim.server.gateway.Gateway, kept apart from serving."""

    state: GatewayState
    clients: dict[int, Connection]
    _connections: set[Connection]
    fault_tasks: set[asyncio.Task]

    def _targets(self, client_id: int | None) -> list[Connection]:
        if client_id is None:
            return list(self.clients.values())
        client = self.clients.get(client_id)
        return [] if client is None else [client]

    def _tell(self, notices: Iterable[IBError], client_id: int | None = None) -> None:
        for client in self._targets(client_id):
            for notice in notices:
                client.send_error(-1, notice)

    def connectivity_lost(self) -> None:
        """1100 and the farms broken: streams stop, order news is held until the link is back."""
        if not self.state.link_up:
            return
        for client in self._targets(None):
            streaming.catch_up(client)  # what came due while the link was up still goes out
        self.state.link_up = False
        log.info("fault: connectivity to IB lost")
        self._tell((errors.CONNECTIVITY_LOST, *errors.FARMS_BROKEN))

    def connectivity_restored(self, data_kept: bool = True) -> None:
        """1102 (`data_kept`: streams carry on) or 1101 (every stream of every client is gone,
        keepUpToDate bars too, and nobody is told), the farms OK, then the held order news."""
        if self.state.link_up:
            log.info("fault: connectivity_restored ignored, the link to IB is up")
            return
        clients = self._targets(None)
        for client in clients:
            streaming.catch_up(client)  # what came due while the link was down is lost
        self.state.link_up = True
        log.info("fault: connectivity to IB restored, data %s", "kept" if data_kept else "lost")
        for client in clients:
            client.send_error(
                -1, errors.RESTORED_DATA_KEPT if data_kept else errors.RESTORED_DATA_LOST
            )
            if not data_kept:
                _drop_streams(client)
            for notice in errors.FARMS_OK:
                client.send_error(-1, notice)
            client.release_held()

    def farm_status(self, code: int, client_id: int | None = None) -> None:
        """Send the farm notice `code` (errors.FARM_STATUS) to one client or all."""
        if code not in errors.FARM_STATUS:
            known = ", ".join(map(str, errors.FARM_STATUS))
            raise ValueError(f"Farm status {code} is unknown: use one of {known}.")
        self._tell((errors.FARM_STATUS[code],), client_id)

    def drop_clients(self, client_id: int | None = None) -> int:
        """Close the socket of one client (or of every connection); returns how many."""
        clients = list(self._connections) if client_id is None else self._targets(client_id)
        log.info("fault: dropping %s connection(s)", len(clients))
        for client in clients:
            client.disconnect()
        return len(clients)

    def stall(self, seconds: float, client_id: int | None = None) -> int:
        """For `seconds` real seconds the gateway neither reads from nor writes to one client
        (or all); then requests that arrived meanwhile are answered, what the gateway sent
        meanwhile goes out, and streamed windows that came due meanwhile are lost."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        clients = self._targets(client_id)
        log.info("fault: stalling %s client(s) for %s s", len(clients), seconds)
        for client in clients:
            streaming.catch_up(client)
            client.stall(until)
            loop.call_at(until, _end_stall, client, until)
        return len(clients)

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


def _end_stall(client: Connection, until: float) -> None:
    if client.stalled_until > until:
        return  # a later stall runs on
    streaming.catch_up(client)  # still stalled: what came due is lost
    client.unstall()


def _drop_streams(client: Connection) -> None:
    """Forget every market data, tick-by-tick, real-time bar, keepUpToDate and account
    subscription (account updates, multi, summary, P&L)."""
    client.subscriptions.clear()
    for req_id in list(client.streaming):
        task = client.historical.pop(req_id, None)
        if task is not None:
            task.cancel()  # its own cleanup frees the open-request slot

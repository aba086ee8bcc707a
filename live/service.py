"""The live service's life: connect, reconcile, stream, trade, and start over after any fault.

One asyncio loop and, per IB login it uses, one ib_async connection (a `Link`) with a fixed
client id, so the orders it placed stay its own across reconnects (IB lets only the placing
client id modify or cancel them). One login usually does both; with several (`gateways:`), the
service trades on the trading login and streams on a data login, and each link connects, fails
and comes back on its own: a data gateway's restart never holds up an order, nor the reverse.

- One service per home (live.guard): a second one refuses at start, naming the holder's pid.
- After every (re)connect, before anything is sent: the orders are reconciled with the gateway
  (open and completed orders, today's executions, positions). Orders then flow at once; every
  stream is subscribed again (ib_async forgets subscriptions with the socket) and the 5-s bar
  gaps are refilled in a task of their own, so an order never waits for market data pacing.
- 1100 (IB unreachable): the link's streams wait and no order goes out on it until 1101 or
  1102. 1101 (data lost): resubscribe everything, then reconcile. 1102 (data kept): verify
  every stream, then reconcile.
- The daily restart, a dropped socket or a stalled connection end the session; the service
  reconnects with a capped backoff, for as long as it runs, saying why each time (a client id
  in use, 326, names the id). A stalled connection is noticed by a heartbeat (reqCurrentTime
  under a deadline).
- The trading login's accounts (live.intraday): positions, P&L and account values as IB pushes
  them, written every flush; the risk limits (live.risk) are checked whenever they change,
  before the next pump, so a hard breach's global cancel goes out before any other order. The
  alert conditions (live.alerting) are checked every second, and sent from a thread.
- SIGTERM/SIGINT: flush the buffers, write the journal's export, disconnect, exit 0.

The journal (live.journal) is the only memory that matters: a kill -9 at any instant loses the
unflushed ticks only; bars are refilled and orders are reconciled on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from ib_async import IB

from engines.alerts import Alerter
from ibkr.connection import ClientIdInUse, ConnectionSettings, connect_async
from ibkr.exceptions import GatewayUnavailable
from live.alerting import LiveAlerts, in_session
from live.config import LiveConfig, resolve_streams
from live.doorbell import Doorbell
from live.guard import hold_home, hold_login
from live.intraday import IntradayAccounts
from live.journal import Journal
from live.orders import OrderManager
from live.refill import login_of
from live.risk import RiskGuard
from live.safety import TradingMode
from live.streams import StreamManager
from warehouse.catalog import refresh_catalog
from warehouse.parquet import fsync_dir

log = logging.getLogger("ibw.live")

LIVE_CLIENT_ID_OFFSET = (
    900  # the service's client id: IB_CLIENT_ID + this, unless IBW_LIVE_CLIENT_ID
)
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)  # seconds between connect attempts, the last one repeats
HEARTBEAT_EVERY = 1.0  # seconds between reqCurrentTime probes (also the streams' gateway clock)
HEARTBEAT_TIMEOUT = 5.0  # a probe unanswered this long means a stalled connection
PUMP_EVERY = 0.01  # the journal is polled this often (one SELECT), and at once on its doorbell
WATCH_EVERY = 1.0
EXPORT_EVERY = 5.0
REPORT_EVERY = 60.0  # seconds between one-line progress reports in the log
LOST, KEPT, RESTORED_LOST = 1100, 1102, 1101


def live_client_id(settings: ConnectionSettings) -> int:
    return int(os.environ.get("IBW_LIVE_CLIENT_ID", settings.client_id + LIVE_CLIENT_ID_OFFSET))


@dataclass(eq=False)
class Link:
    """One connection of the service: what it is for, and whether IB's link behind it is up."""

    settings: ConnectionSettings  # its client id is the service's on this login
    trades: bool
    streams: bool
    ib: IB = field(default_factory=IB)
    up: bool = True  # false from 1100 until 1101 or 1102
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def role(self) -> str:
        return "both" if self.trades and self.streams else "trading" if self.trades else "data"

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def health(self) -> dict:
        return {
            "address": self.address,
            "role": self.role,
            "client_id": self.settings.client_id,
            "connected": self.ib.isConnected(),
            "link_up": self.up,
        }


@dataclass
class Counters:
    """What the service lived through, for the health file and the closing summary."""

    connects: int = 0
    disconnects: int = 0
    stalls: int = 0
    link_lost: int = 0
    link_restored: dict[int, int] = field(default_factory=lambda: {RESTORED_LOST: 0, KEPT: 0})


class LiveService:
    def __init__(
        self,
        settings: ConnectionSettings,
        home: Path,
        config: LiveConfig,
        mode: TradingMode | None = None,
        data: ConnectionSettings | None = None,
    ) -> None:
        """Trade (and stream) on the gateway of `settings`; stream on `data`'s if given."""
        self.home = home
        self.config = config
        self.mode = mode or TradingMode.from_env()
        self.client_id = live_client_id(settings)
        self.trading = Link(replace(settings, client_id=self.client_id), True, data is None)
        self.links = [self.trading]
        if data is not None:
            self.links.append(Link(replace(data, client_id=live_client_id(data)), False, True))
        self.data = self.links[-1]
        self.ib = self.trading.ib
        self.journal = Journal.open(home, fsync=False)  # its writes are IB's to restore
        self.doorbell = Doorbell(home)
        self.counters = Counters()
        self.streams: StreamManager | None = None
        self.intraday = IntradayAccounts(self.ib, home)
        self.risk = RiskGuard(config.risk, self.intraday.exposure, self.journal)
        self._risk_seen = -1  # the intraday changes the risk guard last looked at
        self.orders: OrderManager | None = None
        self._relink: asyncio.Task | None = None
        self._streaming: asyncio.Task | None = None  # this session's subscriptions and refill
        self._login_lock = contextlib.ExitStack()  # the trading login's, from its first connect
        self._login_held = False
        self.last_health: dict = {}
        self.alerts = LiveAlerts(Alerter(home), config.alerts)
        self._alerting: asyncio.Future | None = None  # the alert check in its thread

    # ----------------------------------------------------------------- the outer loop
    async def run(self, stop: asyncio.Event) -> Counters:
        """Serve until `stop` is set: connect, serve the session, and reconnect after faults.

        Raises live.guard.ServiceRunning at once if another service holds the home, or (with
        the shared state in PostgreSQL) the login once connected."""
        with hold_home(self.home), self._login_lock:  # the home's: before anything is written
            return await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> Counters:
        for link in self.links:
            link.ib.errorEvent += self._error_handler(link)
            link.ib.disconnectedEvent += link.disconnected.set
        try:
            # Before any connect: a symbol missing from the security master is one sentence
            # now, not after the gateway comes up.
            resolved = resolve_streams(self.home, self.config)
            self.streams = StreamManager(self.data.ib, resolved, self.home, self.config)
            self.orders = OrderManager(
                self.ib,
                self.journal,
                self.config.limits,
                self.mode,
                reference_price=self.streams.reference_price,
                risk=self.risk,
            )
            self.orders.attach()
            self.intraday.attach()  # before the first connect: its positions count too
            self.doorbell.open()
            await self._keep_all(stop)
        finally:
            await self._shutdown()
        return self.counters

    async def _keep_all(self, stop: asyncio.Event) -> None:
        """Keep every link; a fault of one stops the others and is raised as it came."""
        try:
            async with asyncio.TaskGroup() as group:
                for link in self.links:
                    group.create_task(self._keep(link, stop))
        except* Exception as faults:
            fault = faults.exceptions[0]
            raise fault from fault.__cause__

    async def _keep(self, link: Link, stop: asyncio.Event) -> None:
        """Keep `link` connected and served until `stop`, with a capped backoff."""
        attempt = 0
        self.alerts.on_disconnected(link.address, time.monotonic())  # the deadline runs from now
        while not stop.is_set():
            try:
                await self._connect(link)
            except GatewayUnavailable as exc:
                delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
                attempt += 1
                log.warning("%s", self._retrying(link, exc, delay))
                await self._check_alerts()  # a reconnect overdue is noticed between attempts
                await _sleep_or(stop, delay)
                continue
            attempt = 0
            await self._serve(link, stop)
            self.alerts.on_disconnected(link.address, time.monotonic())

    async def _connect(self, link: Link) -> None:
        link.disconnected.clear()
        await connect_async(link.ib, link.settings, readonly=False)
        if link.trades and not self._login_held:  # held from the first session to the end
            self._login_lock.enter_context(hold_login(login_of(link.ib)))
            self._login_held = True
        self.counters.connects += 1
        link.up = True
        self.alerts.on_connected(link.address, time.monotonic())
        log.info(
            "connected to %s as client %s (%s)", link.address, link.settings.client_id, link.role
        )

    def _retrying(self, link: Link, exc: GatewayUnavailable, delay: float) -> str:
        """The sentence logged before each new connect attempt."""
        if isinstance(exc, ClientIdInUse):
            return ClientIdInUse(
                f"another process is connected with client id {link.settings.client_id}, the "
                "live service's (another `ibw live` on another home, or a tool given that id)",
                f"stop it or set IBW_LIVE_CLIENT_ID to a free id; retrying in {delay:.1f} s",
                code=exc.code,
                subject=exc.subject,
            ).sentence
        return f"{exc.sentence[:-1]}; retrying in {delay:.1f} s."

    async def _serve(self, link: Link, stop: asyncio.Event) -> None:
        """One connected session of `link`: reconcile, then orders flow while streams set up."""
        assert self.streams is not None and self.orders is not None
        beat: asyncio.Task | None = None
        try:
            await self._heartbeat(link)  # the gateway's time, before anything reasons about it
            # Its own task: a request stuck in a stalled connection cannot hold it up.
            beat = asyncio.ensure_future(self._beat(link))
            if link.trades:
                await self.orders.reconcile()
                self.intraday.subscribe()
            if link.streams:  # subscriptions and refills wait for pacing; orders never do
                self._streaming = asyncio.ensure_future(self._stream())
            await self._every_while_connected(link, stop)
        except ConnectionError as exc:  # the socket went while setting up: start over
            log.warning("connection lost to %s while setting up (%s)", link.address, exc)
        finally:
            for task in (beat, self._streaming if link.streams else None):
                if task is not None:
                    task.cancel()
            if link.ib.isConnected():
                link.ib.disconnect()
            self.counters.disconnects += 1

    async def _every_while_connected(self, link: Link, stop: asyncio.Event) -> None:
        assert self.streams is not None and self.orders is not None
        jobs: list[tuple[float, Callable[[], Awaitable[None]]]] = []
        if link.trades:
            jobs += [
                (self.config.flush_every, self.intraday.flush),
                (EXPORT_EVERY, self._export),
                (REPORT_EVERY, self._report),
                (WATCH_EVERY, self._check_alerts),
            ]
        if link.streams:
            jobs += [(self.config.flush_every, self.streams.flush), (WATCH_EVERY, self._watch)]
        wakers = (link.disconnected, self.doorbell.rung) if link.trades else (link.disconnected,)
        due = [0.0] * len(jobs)
        while not stop.is_set() and not link.disconnected.is_set() and link.ib.isConnected():
            if link.streams and self._streaming is not None and self._streaming.done():
                self._streaming.result()  # a fault of the streams' setup is the service's
            if link.trades:  # every wake: a ring during the pump wakes the next one
                self.doorbell.rung.clear()
                await self._pump()
            now = time.monotonic()
            for i, (every, job) in enumerate(jobs):
                if now >= due[i]:
                    due[i] = now + every
                    await job()
            await _sleep_or(stop, PUMP_EVERY, *wakers)

    # ----------------------------------------------------------------- periodic work
    async def _pump(self) -> None:
        if self.trading.up and self.orders is not None:
            self._check_risk()  # first: a hard breach's global cancel goes out in this pump
            await self.orders.pump()

    def _check_risk(self) -> None:
        """The risk limits against the accounts' figures, whenever IB sent new ones."""
        if self.intraday.changes != self._risk_seen:
            self._risk_seen = self.intraday.changes
            self.risk.check_live(self.intraday.accounts)

    async def _stream(self) -> None:
        """Subscribe every stream, then refill the bars they are owed (after each connect)."""
        assert self.streams is not None
        try:
            await self.streams.subscribe_all()
            await self.streams.refill()
        except ConnectionError as exc:  # the session is over; the outer loop goes on
            log.warning("connection lost while subscribing (%s)", exc)

    async def _watch(self) -> None:
        """Once the streams are set up: their retries, staleness and periodic refills."""
        setting_up = self._streaming is not None and not self._streaming.done()
        if self.data.up and self.streams is not None and not setting_up:
            await self.streams.watch()

    async def _check_alerts(self) -> None:
        """Tell the alert conditions what the service sees, then fire and resolve in a thread
        (a channel may take seconds to answer; orders and streams never wait for it)."""
        if self._alerting is not None and not self._alerting.done():
            return
        if self._alerting is not None and self._alerting.exception() is not None:
            log.error("alert check failed: %s", self._alerting.exception())
        streams: list[dict] = []
        markets_open = True
        if self.streams is not None:
            streams = self.streams.health()["streams"]
            at = self.streams.clock.now() or time.time()
            markets_open = in_session((st.stream for st in self.streams.states.values()), at)
        blocks = {f"{b.account} {b.limit}": b.sentence for b in self.journal.risk_blocks()}
        self.alerts.observe(streams, self.journal.differences(), markets_open, blocks)
        self._alerting = asyncio.ensure_future(
            asyncio.to_thread(self.alerts.check, time.monotonic())
        )

    async def _beat(self, link: Link) -> None:
        with contextlib.suppress(ConnectionError):  # the session is over; the outer loop goes on
            while link.ib.isConnected():
                await asyncio.sleep(HEARTBEAT_EVERY)
                await self._heartbeat(link)

    async def _heartbeat(self, link: Link) -> None:
        """The link's only reqCurrentTime (ib_async keeps one future for it): it sets the
        streams' gateway clock, and a stalled connection, which answers nothing, is dropped so
        the outer loop reconnects."""
        try:
            now = await asyncio.wait_for(link.ib.reqCurrentTimeAsync(), HEARTBEAT_TIMEOUT)
        except TimeoutError:
            self.counters.stalls += 1
            log.warning(
                "the gateway at %s did not answer for %.0f s: reconnecting",
                link.address,
                HEARTBEAT_TIMEOUT,
            )
            # What the wrapper does when the peer hangs up: every request waiting on the stalled
            # socket fails now (ib_async's own disconnect() would leave them to their timeouts).
            link.ib.wrapper.connectionClosed()
            link.ib.disconnect()
            return
        if link.streams and self.streams is not None:
            self.streams.clock.observe(now.timestamp() + 0.5)  # IB answers in whole seconds

    async def _export(self) -> None:
        assert self.orders is not None
        await asyncio.to_thread(self.orders.export, self.home)
        self.write_health()

    async def _report(self) -> None:
        """A line a minute, so someone watching the console sees it work."""
        health = self.last_health or self.health()
        totals, orders = health.get("totals", {}), health.get("orders", {})
        intents = orders.get("intents", {})
        log.info(
            "streams ok %s/%s, %s ticks and %s bars written (%s refilled); orders: %s working, "
            "%s done, %s fills, %s differences",
            totals.get("ok", 0), len(health.get("streams", [])), totals.get("ticks", 0),
            totals.get("bars", 0), totals.get("refilled", 0), intents.get("working", 0),
            intents.get("done", 0), orders.get("fills", 0), orders.get("differences", 0),
        )  # fmt: skip

    # ----------------------------------------------------------------- 1100 / 1101 / 1102
    def _error_handler(self, link: Link) -> Callable[[int, int, str, object], None]:
        """`link`'s errorEvent handler (a plain function: ib_async's events keep it alive)."""
        return lambda req_id, code, text, contract: self._on_error(link, req_id, code, text)

    def _on_error(self, link: Link, req_id: int, code: int, text: str) -> None:
        self.alerts.on_error(link.address, code, text, time.monotonic())
        if link.streams and self.streams is not None:
            self.streams.on_error(req_id, code, text)
        if code == LOST:
            self.counters.link_lost += 1
            link.up = False
            waits = {"both": "streams wait, no order goes out", "data": "streams wait",
                     "trading": "no order goes out"}[link.role]  # fmt: skip
            log.warning("IB is out of reach from %s (1100): %s", link.address, waits)
        elif code in (RESTORED_LOST, KEPT):
            self.counters.link_restored[code] += 1
            link.up = True
            log.info("IB is back at %s (%s)%s", link.address, code, ": reconciling" * link.trades)
            if link.trades and (self._relink is None or self._relink.done()):
                self._relink = asyncio.ensure_future(self._after_relink(code))

    async def _after_relink(self, code: int) -> None:
        """Orders may have changed while IB was away: reconcile before the next pump. After
        1101 the account subscriptions are gone too: make them again."""
        if self.orders is None:
            return
        with contextlib.suppress(ConnectionError, TimeoutError):
            await self.orders.reconcile()
            if code == RESTORED_LOST:
                await self.intraday.resubscribe(HEARTBEAT_TIMEOUT)

    # ----------------------------------------------------------------- health and shutdown
    def health(self) -> dict:
        streams = self.streams.health() if self.streams is not None else {"streams": []}
        return {
            "written_at": datetime.now(UTC).isoformat(),
            "pid": os.getpid(),
            "connected": all(link.ib.isConnected() for link in self.links),
            "link_up": all(link.up for link in self.links),
            "client_id": self.client_id,
            "links": [link.health() for link in self.links],
            "counters": {
                "connects": self.counters.connects,
                "disconnects": self.counters.disconnects,
                "stalls": self.counters.stalls,
                "link_lost": self.counters.link_lost,
                "link_restored_data_lost": self.counters.link_restored[RESTORED_LOST],
                "link_restored_data_kept": self.counters.link_restored[KEPT],
            },
            **streams,
            "intraday": self.intraday.health(),
            "orders": self.journal.summary(),
        }

    def write_health(self) -> None:
        self.last_health = self.health()
        write_json(health_path(self.home), self.last_health)

    async def _shutdown(self) -> None:
        if self.streams is not None:
            with contextlib.suppress(Exception):
                await self.streams.flush()
        with contextlib.suppress(Exception):
            await self.intraday.flush()
        if self.orders is not None:
            self.orders.export(self.home)
        refresh_catalog(self.home)
        self.write_health()
        for link in self.links:
            if link.ib.isConnected():
                link.ib.disconnect()
        self.doorbell.close()
        self.journal.close()
        if self._alerting is not None:
            with contextlib.suppress(Exception):
                await self._alerting  # an alert being sent goes out before the exit
        self.alerts.alerter.close()


def health_path(home: Path) -> Path:
    return home / "live" / "health.json"


def write_json(path: Path, data: dict) -> None:
    """Atomically: readers (the observation sensor) never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as out:
        json.dump(data, out, indent=1, default=str)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


async def _sleep_or(stop: asyncio.Event, seconds: float, *others: asyncio.Event) -> None:
    """Sleep, but wake as soon as `stop` (or any of `others`) is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in (stop, *others)]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()

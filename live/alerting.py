"""The live service's alert conditions: what has gone wrong for long enough to tell someone.

`LiveAlerts` is fed by the service as things happen (IB's codes per link, connects and
disconnects, the streams' health, the journal's differences, the risk checks' verdicts) with the
time passed in, and `check(now)` fires what has lasted past its threshold (`alerts:` in the live
config) and resolves what has cleared, through an `engines.alerts.Alerter` (one alert per
condition and subject until it clears). `check` sends, so the service runs it in a thread; the
feeding methods only note the state.

IB's codes, from IB's "Message Codes" page of the TWS API documentation
(https://interactivebrokers.github.io/tws-api/message_codes.html): 1100 "connectivity between
IB and the TWS has been lost", 1101/1102 restored with data lost/kept; a farm's connection broken
is 2103 (market data), 2105 (historical data, HMDS) and 2157 (security definitions), each ended
by its "OK" notice, 2104, 2106 and 2158; the text names the farm after a colon
("Market data farm connection is broken:usfarm").
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from engines.alerts import Alerter
from live.config import AlertThresholds, ResolvedStream
from live.refill import session_at

LINK_LOST = "link_lost"
FARM_BROKEN = "farm_broken"
RECONNECT_OVERDUE = "reconnect_overdue"
STREAM_STALE = "stream_stale"
DIFFERENCE = "reconciliation_difference"
RISK_BREACH = "risk_breach"
CONDITIONS = (LINK_LOST, FARM_BROKEN, RECONNECT_OVERDUE, STREAM_STALE, DIFFERENCE, RISK_BREACH)
LOST, RESTORED = 1100, (1101, 1102)
FARM_RESTORED_BY = {2103: 2104, 2105: 2106, 2157: 2158}  # a farm's "broken" code -> its "OK" code
FARM_KINDS = {2103: "market data", 2105: "historical data", 2157: "security definition"}


def farm_of(text: str) -> str:
    """The farm a 2103-2158 notice names, after its last colon (usfarm, ushmds, secdefnj)."""
    return text.rsplit(":", 1)[-1].strip() or "unnamed farm"


def in_session(streams: Iterable[ResolvedStream], at: float) -> bool:
    """Whether any stream's market is in session at `at` (the gateway's epoch seconds)."""
    return any(session_at(stream.hours, at) is not None for stream in streams)


class LiveAlerts:
    """The live conditions of one service; thread-safe (fed on the loop, checked in a thread)."""

    def __init__(self, alerter: Alerter, thresholds: AlertThresholds) -> None:
        self.alerter = alerter
        self.thresholds = thresholds
        self._lock = threading.Lock()
        self._connected: set[str] = set()
        self._link_lost: dict[str, float] = {}  # address -> since
        self._farms: dict[tuple[str, str], tuple[int, float]] = {}  # (address, farm) -> code, since
        self._down: dict[str, float] = {}  # address -> disconnected since
        self._stale: set[str] = set()  # stream symbols
        self._differences: dict[str, list[str]] = {}  # kind -> the details, oldest first
        self._risk: dict[str, str] = {}  # subject -> sentence
        self._in_session = True
        # Alerts of these conditions still active from an earlier run are this service's to clear.
        self._mine = {key for key in alerter.active() if key[0] in CONDITIONS}

    # ----------------------------------------------------------------- fed by the service
    def on_error(self, address: str, code: int, text: str, now: float) -> None:
        """IB's error and status codes on the link to the gateway at `address`."""
        with self._lock:
            if code == LOST:
                self._link_lost.setdefault(address, now)
            elif code in RESTORED:
                self._link_lost.pop(address, None)
            elif code in FARM_RESTORED_BY:
                self._farms.setdefault((address, farm_of(text)), (code, now))
            elif code in FARM_RESTORED_BY.values():
                self._farms.pop((address, farm_of(text)), None)

    def on_connected(self, address: str, now: float) -> None:
        """A session began: the link is up until IB says 1100."""
        with self._lock:
            self._connected.add(address)
            self._down.pop(address, None)
            self._link_lost.pop(address, None)

    def on_disconnected(self, address: str, now: float) -> None:
        """The session ended (the daily restart, a dropped socket, a stall, or the start)."""
        with self._lock:
            self._connected.discard(address)
            self._down.setdefault(address, now)

    def observe(
        self,
        streams: Iterable[Mapping[str, Any]],
        differences: Iterable[Mapping[str, Any]],
        markets_open: bool,
        blocks: Mapping[str, str],
    ) -> None:
        """The streams' health (StreamManager.health()'s `streams`: a stream the manager found
        silent in session for `stale_after` is "stale" until data comes), the journal's
        differences, whether any stream's market is in session (farms matter only then), and
        the accounts blocked by a risk limit ("account limit" -> the breach's sentence), each
        alerted until `ibw order unblock` lifts it."""
        with self._lock:
            self._stale = {s["symbol"] for s in streams if s["state"] == "stale"}
            self._differences = {}
            for d in differences:
                self._differences.setdefault(d["kind"], []).append(d["detail"])
            self._in_session = markets_open
            self._risk = dict(blocks)

    # ----------------------------------------------------------------- deciding and sending
    def check(self, now: float) -> None:
        """Fire what has lasted past its threshold, resolve what has cleared (blocks on sends)."""
        with self._lock:
            due, faulted = self._due(now)
        for key, sentence in due.items():  # the shared state is asked only about new ones
            if key not in self._mine and self.alerter.fire(*key, sentence):
                self._mine.add(key)
        for key in sorted(self._mine - faulted):
            self.alerter.resolve(*key)
            self._mine.discard(key)

    def _due(self, now: float) -> tuple[dict[tuple[str, str], str], set[tuple[str, str]]]:
        """The alerts that should be active now (with their sentences), and every condition that
        is faulted at all, past its threshold or not (those are not resolved)."""
        t = self.thresholds
        due: dict[tuple[str, str], str] = {}
        faulted: set[tuple[str, str]] = set()
        for address, since in self._down.items():
            faulted.add((RECONNECT_OVERDUE, address))
            if now - since >= t.reconnect_deadline:
                due[(RECONNECT_OVERDUE, address)] = (
                    f"The live service has not reconnected to the gateway at {address} for "
                    f"{now - since:.0f} s (deadline {t.reconnect_deadline:g} s): check that the "
                    "gateway runs and logged in after its daily restart."
                )
        for address, since in self._link_lost.items():
            faulted.add((LINK_LOST, address))
            if address in self._connected and now - since >= t.link_lost_after:
                due[(LINK_LOST, address)] = (
                    f"IB has been out of reach from the gateway at {address} for "
                    f"{now - since:.0f} s (1100): no order goes out and streams wait; check the "
                    "gateway's internet connection and IB's system status."
                )
        for (address, farm), (code, since) in self._farms.items():
            subject = f"{farm} at {address}"
            faulted.add((FARM_BROKEN, subject))
            lasting = now - since >= t.farm_broken_after
            link_up = address in self._connected and address not in self._link_lost
            if lasting and link_up and self._in_session:  # a lost link says it already
                due[(FARM_BROKEN, subject)] = (
                    f"IB's {FARM_KINDS[code]} farm {farm} has been broken for {now - since:.0f} s "
                    f"({code}) on the gateway at {address} while markets are open: data may be "
                    "missing; check IB's system status."
                )
        for symbol in self._stale:
            faulted.add((STREAM_STALE, symbol))
            due[(STREAM_STALE, symbol)] = (
                f"{symbol} sent no data in session for longer than its stale_after, even after "
                "a resubscription: check its market data permissions and IB's system status."
            )
        for kind, details in self._differences.items():  # one alert per kind, not per row
            faulted.add((DIFFERENCE, kind))
            more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
            due[(DIFFERENCE, kind)] = (
                f"Reconciliation found {len(details)} {kind} difference(s) with the gateway: "
                f"{details[0]}{more}; see live_differences."
            )
        for subject, sentence in self._risk.items():
            faulted.add((RISK_BREACH, subject))
            due[(RISK_BREACH, subject)] = sentence
        return due, faulted

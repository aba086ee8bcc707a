"""Alerts: one message per condition and subject until it clears, then one "resolved".

Owns `Alerter`. The channels are apprise URLs (Slack, Teams, Telegram, e-mail, ntfy, JSON
webhooks...), given or read from IBW_ALERT_URLS; without any, an alert is only logged and
recorded. Every alert, sent or not, is a row of the `alerts` dataset (warehouse.alerts).

Which alerts are active is shared state, so the live service and Dagster's daemon and runs of one
deployment never send the same alert twice: the project's shared state (shared_state.database),
an SQLite file under `$IBW_HOME/alerts/` by default or a table in PostgreSQL with
IBW_POSTGRES_URL, the same backends as the pacing log. A fire or a resolve reads and writes the
active set in one transaction under the log's write lock, so of two processes firing the same
alert, one sends it.

A channel that fails never raises into the caller: it is logged by its scheme only (URLs carry
tokens) and recorded with `delivered` false. Each send is bounded by a connect and a read timeout.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from shared_state.database import PostgresDatabase, SQLiteDatabase
from shared_state.settings import postgres_url
from warehouse.alerts import record_alert

if TYPE_CHECKING:
    import apprise

log = logging.getLogger("ibw.alerts")

ALERT_URLS = "IBW_ALERT_URLS"
SEND_TIMEOUT = 4.0  # seconds, for connecting and again for reading, on every channel
FIRED, RESOLVED = "fired", "resolved"
SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts_active (
    condition TEXT NOT NULL,
    subject TEXT NOT NULL,
    fired_at DOUBLE PRECISION NOT NULL,
    sentence TEXT NOT NULL,
    PRIMARY KEY (condition, subject)
)"""


def alert_urls(value: str | None = None) -> list[str]:
    """The apprise URLs in `value` (default: IBW_ALERT_URLS), split on spaces and commas."""
    text = os.environ.get(ALERT_URLS, "") if value is None else value
    return [url for url in re.split(r"[\s,]+", text) if url]


def _channels(urls: list[str]) -> tuple[apprise.Apprise | None, list[str]]:
    """The channels apprise understands among `urls` and their schemes; (None, []) without any
    URL: apprise takes a noticeable fraction of a second to import, which a service that sends
    nowhere need not pay at every start."""
    if not urls:
        return None, []
    import apprise  # here, not at the top: see the docstring

    channels, schemes = apprise.Apprise(), []
    for url in urls:
        scheme = url.split("://", 1)[0]
        if not channels.add(url):
            log.error("alert channel %s:// is not a URL apprise understands: skipped", scheme)
            continue
        schemes.append(scheme)
    for channel in channels:  # an unanswered channel must not hold up the caller
        channel.socket_connect_timeout = min(channel.socket_connect_timeout, SEND_TIMEOUT)
        channel.socket_read_timeout = min(channel.socket_read_timeout, SEND_TIMEOUT)
    return channels, schemes


class Alerter:
    """Fire and resolve alerts for one deployment (the home's, or PostgreSQL's, shared state)."""

    def __init__(self, home: Path, urls: Iterable[str] | None = None, source: str = "live") -> None:
        self.home = Path(home)
        self.source = source  # "live" or "dagster": who raised it, in the dataset
        self._channels, self._schemes = _channels(alert_urls() if urls is None else list(urls))
        url = postgres_url()
        if url:
            self._db: SQLiteDatabase | PostgresDatabase = PostgresDatabase(url, "alerts")
        else:
            self._db = SQLiteDatabase(self.home / "alerts" / "active.sqlite")
        with self._db.transaction() as db:
            db.execute(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Alerter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def channels(self) -> int:
        return len(self._schemes)

    def fire(self, condition: str, subject: str, sentence: str) -> bool:
        """Send `sentence` unless this condition is already active for `subject`; True if sent
        (or, with no channel, recorded)."""
        with self._db.transaction() as db:
            if db.execute(
                "SELECT 1 FROM alerts_active WHERE condition = ? AND subject = ?",
                (condition, subject),
            ):
                return False
            db.execute(
                "INSERT INTO alerts_active (condition, subject, fired_at, sentence) "
                "VALUES (?, ?, ?, ?)",
                (condition, subject, time.time(), sentence),
            )
        self._send(condition, subject, FIRED, sentence)
        return True

    def resolve(self, condition: str, subject: str, sentence: str = "") -> bool:
        """Send "resolved" if this condition is active for `subject`; True if it was."""
        with self._db.transaction() as db:
            found = db.execute(
                "SELECT sentence FROM alerts_active WHERE condition = ? AND subject = ?",
                (condition, subject),
            )
            if not found:
                return False
            db.execute(
                "DELETE FROM alerts_active WHERE condition = ? AND subject = ?",
                (condition, subject),
            )
        self._send(condition, subject, RESOLVED, sentence or f"Resolved: {found[0][0]}")
        return True

    def active(self, condition: str | None = None) -> dict[tuple[str, str], str]:
        """The active alerts (of one condition, if given): (condition, subject) -> sentence."""
        with self._db.transaction() as db:
            rows = db.execute("SELECT condition, subject, sentence FROM alerts_active")
        return {(c, s): text for c, s, text in rows if condition in (None, c)}

    def _send(self, condition: str, subject: str, state: str, sentence: str) -> None:
        """Deliver to every channel, log, and record; never raises for a channel."""
        at = datetime.now(UTC)
        title = f"ib-warehouse {condition} {state}: {subject}" if subject else condition
        delivered = False  # with no channel, nothing was delivered: only logged and recorded
        if self._channels is not None and self._schemes:
            try:
                delivered = bool(self._channels.notify(title=title, body=sentence))
            except Exception as exc:  # a plugin's bug must not stop the service
                log.error("alert channels raised %s", type(exc).__name__)
                delivered = False
            if not delivered:
                log.error(
                    "alert %s %s not delivered to every channel (%s)",
                    condition,
                    state,
                    ", ".join(f"{s}://" for s in self._schemes),
                )
        logger = log.warning if state == FIRED else log.info
        logger("alert %s %s: %s", condition, state, sentence)
        row = {
            "at": at,
            "condition": condition,
            "subject": subject,
            "state": state,
            "sentence": sentence,
            "source": self.source,
            "delivered": delivered,
            "channels": len(self._schemes),
        }
        try:
            record_alert(self.home, row)
        except OSError as exc:  # a full disk must not stop the service either
            log.error("alert %s %s not recorded: %s", condition, state, exc.strerror)

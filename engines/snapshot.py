"""The nightly account snapshot, taken and stored: shared by the Dagster assets and `ibw snapshot`.

Taking it: connect with backoff while the gateway is restarting (refused connections, a drop in
the middle), never inside IB's reset window (by IB's clock), up to a deadline; then every request of
`ibkr.snapshot` on one connection. A restart in the middle throws the partial snapshot away and
starts again, so what is stored is always a whole one. Storing it: each dataset validated
(pandera; bad rows quarantined with their reason) and written as the day's partition, replacing
the last run's. When and how patiently it runs (`SnapshotSettings`) comes from the environment;
the Dagster resource wraps the same settings. No Dagster here.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ibkr import errors
from ibkr.client import IBClient
from ibkr.connection import ConnectionSettings
from ibkr.gateways import GatewaysError, Login
from ibkr.restarts import NO_RESET, RESET_WINDOWS
from ibkr.snapshot import Snapshot, take
from warehouse.columns import LINEAGE
from warehouse.parquet import write_partition
from warehouse.quarantine import write_quarantine
from warehouse.schemas import SNAPSHOT_SCHEMAS, polars_schema
from warehouse.validation import split_valid

DATASETS = tuple(SNAPSHOT_SCHEMAS)
FIRST_BACKOFF, LAST_BACKOFF = 1.0, 60.0
REQUEST_TIMEOUT = 30.0  # each request of an attempt; a silent gateway costs no more than this


@dataclass(frozen=True)
class SnapshotSettings:
    """When and how patiently the nightly snapshot runs: IB's region ($IBW_SNAPSHOT_REGION:
    north_america, europe, asia; none for a gateway IB does not reset) sets the reset window it
    avoids and the schedule; `deadline` bounds its retries while the gateway restarts."""

    region: str = "north_america"
    deadline: float = 900.0  # seconds

    @classmethod
    def from_env(cls) -> SnapshotSettings:
        return cls(region=os.environ.get("IBW_SNAPSHOT_REGION", cls.region))


@dataclass(frozen=True)
class Stored:
    day: date
    accounts: tuple[str, ...]
    rows: dict[str, int]
    rejected: dict[str, int]  # rows quarantined, per dataset
    attempts: int
    requests: int

    @property
    def quarantined(self) -> int:
        return sum(self.rejected.values())


def take_snapshot(
    settings: ConnectionSettings,
    key: str,
    *,
    region: str = SnapshotSettings.region,
    deadline: float = SnapshotSettings.deadline,
    datasets: Iterable[str] = DATASETS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_wait: Callable[[str], None] = lambda line: None,
) -> tuple[Snapshot, datetime, tuple[str, ...], int]:
    """A whole snapshot, its gateway time, the accounts in it and the attempts it took.

    `region` names IB's reset window to stay out of (ibkr.restarts), judged by the gateway's
    clock; "none" for a gateway that IB does not reset (the embedded one). Before every wait,
    `on_wait` gets one line: what it waits for, why, when it tries again and the time left."""
    if region not in RESET_WINDOWS and region != NO_RESET:
        raise ValueError(f"unknown IB region {region!r}; use one of {', '.join(RESET_WINDOWS)}")
    give_up = clock() + deadline
    window = RESET_WINDOWS.get(region)  # None: no reset to avoid (the embedded gateway)
    where = f"{settings.host}:{settings.port}"
    backoff, attempts = FIRST_BACKOFF, 0
    while True:
        attempts += 1
        # an attempt takes at most half the time left, so a silent gateway is tried again
        left = max((give_up - clock()) / 2, 1.0)
        try:
            patient = replace(settings, timeout=min(settings.timeout, left))
            client = IBClient.open(patient, key, request_timeout=min(REQUEST_TIMEOUT, left))
            try:
                gateway_now = client.run(client.now())
                if window is not None and window.contains(gateway_now):
                    ends = window.ends_at(gateway_now)
                    wait = (ends - gateway_now).total_seconds()
                else:
                    managed = client.ib.managedAccounts()
                    accounts = tuple(a for a in managed if not a.startswith(("F", "I")))
                    is_fa = len(accounts) < len(managed)
                    snap = client.run(take(client, list(accounts), is_fa, datasets))
                    return snap, gateway_now, accounts, attempts
            finally:
                client.close()
        except (errors.GatewayUnavailable, errors.RequestTimeout, ConnectionError, OSError) as exc:
            if clock() + backoff > give_up:
                raise errors.GatewayUnavailable(
                    f"the gateway was still unavailable after {deadline:.0f} s "
                    f"({attempts} attempts; last: {errors.one_sentence(exc).rstrip('.')})",
                    "check that IB Gateway restarted and logged in, then run the snapshot again",
                ) from exc
            on_wait(
                f"Waiting for the gateway at {where} (attempt {attempts}): "
                f"{errors.one_sentence(exc)} {_next_try(backoff, give_up - clock())}"
            )
            sleep(backoff)
            backoff = min(backoff * 2, LAST_BACKOFF)
            continue
        # inside IB's reset window (by IB's clock): IB may drop us at any moment, wait it out
        if clock() + wait > give_up:
            raise errors.GatewayUnavailable(
                "IB's daily reset window is on and ends after the snapshot's deadline",
                "run the snapshot after the window (the schedule does) or raise the deadline",
            )
        on_wait(
            f"Waiting out IB's daily reset window, which ends at {ends:%H:%M} {ends.tzname()} "
            f"by IB's clock: IB may drop every connection until then. "
            f"{_next_try(wait, give_up - clock())}"
        )
        sleep(wait)


@dataclass(frozen=True)
class Taken:
    """A snapshot of every account, where it came from and what it took."""

    snap: Snapshot
    now: datetime  # the (first) gateway's time
    accounts: tuple[str, ...]
    attempts: int
    source: str  # lineage: ib://host:port of each login, never credentials


def owners(logins: Sequence[Login]) -> list[Login]:
    """The logins that own accounts: role trading or both."""
    found = [login for login in logins if login.trades]
    if not found:
        raise GatewaysError(
            "No IB login has role trading or both, so no login owns an account: give the login "
            "that holds the accounts role trading or both."
        )
    return found


def snapshot_logins(logins: Sequence[Login], key: str, **options: Any) -> Taken:
    """Every account's snapshot, each from the login that owns it (`owners`), one after the
    other; with several, each keeps only its `accounts`' rows (the gateways file requires
    them, disjoint). `options` go to `take_snapshot`."""
    taken = {
        login: Taken(*take_snapshot(login.settings(), key, **options), f"ib://{login.address}")
        for login in owners(logins)
    }
    source = ",".join(part.source for part in taken.values())
    if len(taken) == 1:
        [only] = taken.values()
        return only
    merged, accounts = Snapshot(), []
    for login, part in taken.items():
        own = set(login.accounts)
        kept = {
            row["exec_id"] for row in part.snap.rows("executions") if row.get("account") in own
        }  # commissions name no account: they follow their executions
        for dataset, rows in part.snap.tables.items():
            merged.rows(dataset).extend(
                row for row in rows
                if row.get("account") in own
                or ("account" not in row and row.get("exec_id") in kept)
            )  # fmt: skip
        merged.requests += part.snap.requests
        accounts += [account for account in part.accounts if account in own]
    first = next(iter(taken.values()))
    attempts = max(part.attempts for part in taken.values())
    return Taken(merged, first.now, tuple(accounts), attempts, source)


def _next_try(wait: float, left: float) -> str:
    return f"Trying again in {wait:.0f} s; {left:.0f} s left before the snapshot's deadline."


def store_snapshot(
    home: Path,
    day: date,
    snap: Snapshot,
    accounts: tuple[str, ...],
    source: str,
    attempts: int,
    datasets: Iterable[str] = DATASETS,
) -> Stored:
    """Each of `datasets` as the day's partition (replacing a rerun's), validated."""
    request_id, fetched_at = uuid.uuid4().hex, datetime.now(UTC)
    rows, rejected_rows = {}, {}
    for dataset in datasets:
        stored = polars_schema(dataset)
        own = [c for c in stored if c != "snapshot_date" and c not in LINEAGE]
        frame = pl.DataFrame(
            [{c: r.get(c) for c in own} for r in snap.rows(dataset)],
            schema={c: stored[c] for c in own},
            orient="row",
        ).with_columns(
            snapshot_date=pl.lit(day),
            request_id=pl.lit(request_id),
            fetched_at=pl.lit(fetched_at).dt.cast_time_unit("us"),
            source=pl.lit(source),
        )
        origin = f"{dataset} {day}"
        valid, rejected = split_valid(frame, dataset, origin)
        write_partition(home, dataset, valid, {"snapshot_date": day.isoformat()})
        write_quarantine(home, rejected, dataset, origin)
        rows[dataset] = valid.height
        rejected_rows[dataset] = rejected.height
    return Stored(day, accounts, rows, rejected_rows, attempts, snap.requests)

"""Dagster resources: the IB connection, the warehouse home, the universe file and the
snapshot's settings (the last two wrap the engines' own, which `ibw` uses without Dagster)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from engines.snapshot import SnapshotSettings
from engines.universe_file import DEFAULT_UNIVERSE, load_universe, universe_path
from ibkr.client import IBClient
from ibkr.connection import ConnectionSettings
from ibkr.universe import Universe


class IBResource(dg.ConfigurableResource):
    """IB Gateway or TWS; the embedded gateway on 127.0.0.1:4002 unless the environment says."""

    host: str = "127.0.0.1"
    port: int = 4002
    client_id: int = 100  # first of the ids handed to runs (IB_CLIENT_ID)
    connect_timeout: float = 10.0
    request_timeout: float = 30.0

    @classmethod
    def from_env(cls) -> IBResource:
        settings = ConnectionSettings.from_env()
        return cls(
            host=settings.host,
            port=settings.port,
            client_id=int(os.environ.get("IB_CLIENT_ID", cls.model_fields["client_id"].default)),
        )

    @property
    def source(self) -> str:
        """Lineage: where the data came from (never credentials)."""
        return f"ib://{self.host}:{self.port}"

    @property
    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(self.host, self.port, self.client_id, self.connect_timeout)

    @contextmanager
    def client(self, key: str) -> Iterator[IBClient]:
        """A connected client whose id is derived from `key` (the run), closed afterwards."""
        client = IBClient.open(self.settings, key, self.request_timeout)
        try:
            yield client
        finally:
            client.close()


class WarehouseResource(dg.ConfigurableResource):
    """Where the lake and the DuckDB catalog live ($IBW_HOME, default ./.ibw)."""

    home: str = ".ibw"

    @classmethod
    def from_env(cls) -> WarehouseResource:
        return cls(home=os.environ.get("IBW_HOME", ".ibw"))

    @property
    def path(self) -> Path:
        return Path(self.home).resolve()


class UniverseResource(dg.ConfigurableResource):
    """The universe file ($IBW_UNIVERSE, default: the one that ships with the project)."""

    path: str = str(DEFAULT_UNIVERSE)

    @classmethod
    def from_env(cls) -> UniverseResource:
        return cls(path=universe_path())

    def load(self) -> Universe:
        return load_universe(self.path)


class SnapshotResource(dg.ConfigurableResource):
    """The snapshot's settings (`engines.snapshot.SnapshotSettings`: IB's region, whose reset
    window it avoids and which sets the schedule, and the deadline of its retries)."""

    region: str = SnapshotSettings.region
    deadline: float = SnapshotSettings.deadline  # seconds

    @classmethod
    def from_env(cls) -> SnapshotResource:
        settings = SnapshotSettings.from_env()
        return cls(region=settings.region, deadline=settings.deadline)

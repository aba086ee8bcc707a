"""Dagster resources: the IB connection, the warehouse home, the universe file and the
snapshot's settings (the last two wrap the engines' own, which `ibw` uses without Dagster)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from engines.gateways_file import GATEWAYS, load_logins
from engines.snapshot import SnapshotSettings
from engines.universe_file import DEFAULT_UNIVERSE, load_universe, universe_path
from ibkr.client import IBClient
from ibkr.connection import ConnectionSettings
from ibkr.gateways import CLIENT_ID_BASE, DEFAULT_NAME, Login, login_from_env
from ibkr.universe import Universe


class IBResource(dg.ConfigurableResource):
    """IB Gateway or TWS; the embedded gateway on 127.0.0.1:4002 unless the environment says.
    With a gateways file ($IBW_GATEWAYS), its logins instead (`logins`)."""

    host: str = "127.0.0.1"
    port: int = 4002
    client_id: int = CLIENT_ID_BASE  # first of the ids handed to runs (IB_CLIENT_ID)
    connect_timeout: float = 10.0
    request_timeout: float = 30.0
    gateways: str = ""  # the gateways file, if any

    @classmethod
    def from_env(cls) -> IBResource:
        login = login_from_env()
        return cls(
            host=login.host,
            port=login.port,
            client_id=login.client_id_base,
            gateways=os.environ.get(GATEWAYS, ""),
        )

    def logins(self) -> tuple[Login, ...]:
        """Every IB login: the gateways file's, or the one this resource names."""
        if self.gateways:
            return load_logins(self.gateways)
        return (Login(DEFAULT_NAME, self.host, self.port, self.client_id),)

    @property
    def source(self) -> str:
        """Lineage: where the data came from (never credentials)."""
        return f"ib://{self.host}:{self.port}"

    @property
    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(self.host, self.port, self.client_id, self.connect_timeout)

    @contextmanager
    def client(self, key: str, login: Login | None = None) -> Iterator[IBClient]:
        """A connected client whose id is derived from `key` (the run), closed afterwards; on
        `login` if given, else on the resource's own gateway."""
        settings = login.settings(self.connect_timeout) if login else self.settings
        client = IBClient.open(settings, key, self.request_timeout)
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

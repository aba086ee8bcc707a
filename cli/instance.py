"""The Dagster instance of a warehouse home: `$IBW_HOME/dagster/dagster.yaml`, written from
pipelines/dagster.yaml, on SQLite under the home (the default) or on PostgreSQL when
IBW_POSTGRES_URL is set. `ibw dev` and `ibw serve` write it before they start Dagster.

The URL never reaches the file: its password goes to Dagster through an environment variable
(`env:` in the yaml), the rest is split into `postgres_db` parts with the driver chosen here.
SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg 3, which is not installed (and Dagster's
`NOTIFY` fails on it); psycopg2 is, so the scheme is `postgresql+psycopg2`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from shared_state.settings import POSTGRES_URL  # the one setting: the instance and the state

ROOT = Path(__file__).resolve().parents[1]
# Not in the repository root: `dagster dev` warns about a dagster.yaml in its working directory
# that is not DAGSTER_HOME's.
INSTANCE_SETTINGS = ROOT / "pipelines" / "dagster.yaml"
POSTGRES_PASSWORD = "IBW_POSTGRES_PASSWORD"  # set by `ibw` from the URL, read by Dagster
SCHEME = "postgresql+psycopg2"
ACCEPTED_SCHEMES = ("postgresql", "postgres", SCHEME)
EXAMPLE = "postgresql://user:password@host:5432/database"


class InstanceSettingsError(ValueError):
    """IBW_POSTGRES_URL cannot be used; the message names the fix and never holds the URL."""


@dataclass(frozen=True)
class Instance:
    """A written instance: its DAGSTER_HOME, the environment its processes need, and where its
    storage is, in words fit for a log (no user, no password)."""

    dagster_home: Path
    env: dict[str, str]
    storage: str


def write_instance(home: Path, environ: Mapping[str, str]) -> Instance:
    """Write `home`'s instance yaml for the storage `environ` asks for (IBW_POSTGRES_URL)."""
    dagster_home = home / "dagster"
    settings = INSTANCE_SETTINGS.read_text()
    env = {"DAGSTER_HOME": str(dagster_home)}
    url = environ.get(POSTGRES_URL, "").strip()
    if url:
        database, password = postgres_db(url)
        if password:
            env[POSTGRES_PASSWORD] = password
        settings += "# Runs, event log, schedules and pools: PostgreSQL (IBW_POSTGRES_URL).\n"
        settings += yaml.safe_dump({"storage": {"postgres": {"postgres_db": database}}})
        where = f"{database['hostname'] or 'local socket'}:{database['port']}"
        storage = f"PostgreSQL database {database['db_name']} on {where}"
    else:
        storage = f"SQLite under {dagster_home}"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(settings)
    return Instance(dagster_home, env, storage)


def postgres_db(url: str) -> tuple[dict, str]:
    """dagster-postgres's `postgres_db` parts of `url` (the password as an `env:` reference) and
    the password itself ('' when the URL has none)."""
    parts = urlsplit(url)
    if parts.scheme not in ACCEPTED_SCHEMES:
        raise InstanceSettingsError(
            f"{POSTGRES_URL} must be a PostgreSQL URL such as {EXAMPLE}, not a "
            f"{parts.scheme or 'scheme-less'} one."
        )
    try:
        port = parts.port or 5432
    except ValueError:
        raise InstanceSettingsError(
            f"{POSTGRES_URL} has a port that is not a number: write it as {EXAMPLE}."
        ) from None
    database = unquote(parts.path.lstrip("/"))
    if not parts.username or not database:
        raise InstanceSettingsError(
            f"{POSTGRES_URL} must name a user and a database, as in {EXAMPLE}."
        )
    settings: dict = {
        "username": unquote(parts.username),
        "hostname": parts.hostname or "",  # none: a Unix socket (`?host=/run/postgresql`)
        "port": port,
        "db_name": database,
        "scheme": SCHEME,
    }
    password = unquote(parts.password or "")
    if password:
        settings["password"] = {"env": POSTGRES_PASSWORD}
    if parts.query:
        settings["params"] = dict(parse_qsl(parts.query))
    return settings, password

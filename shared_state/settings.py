"""Which backend holds the shared state: PostgreSQL when `IBW_POSTGRES_URL` is set, else the
SQLite files and `flock` locks of the home. The URL may carry a password, so it is only ever
shown redacted."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

POSTGRES_URL = "IBW_POSTGRES_URL"


def postgres_url() -> str | None:
    """The PostgreSQL URL of the shared state, or None for the SQLite default."""
    return os.environ.get(POSTGRES_URL, "").strip() or None


def redacted(url: str) -> str:
    """`url` without its password, for sentences and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit(parts._replace(netloc=user + host))

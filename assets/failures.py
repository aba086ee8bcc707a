"""Failures as Dagster shows them: the one sentence that names the cause and the fix."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ibkr.errors import IBWError
from ibkr.universe import UniverseError
from warehouse.unreadable import UnreadableFile


@contextmanager
def one_sentence_failures() -> Iterator[None]:
    """Turn the project's own errors into a dg.Failure whose description is their sentence."""
    try:
        yield
    except (IBWError, UniverseError, UnreadableFile) as exc:
        raise dg.Failure(description=str(exc)) from exc

"""Failures as Dagster shows them: the one sentence that names the cause and the fix, and a
retry when the gateway or the shared state's PostgreSQL went away in the middle of a run (IB
Gateway restarts daily, and a restart drops every client; a database restarts for upgrades), so
a run outlives a restart without a click."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ibkr.errors import GatewayUnavailable, IBWError
from ibkr.gateways import GatewaysError
from ibkr.universe import UniverseError
from shared_state.database import SharedStateError
from warehouse.unreadable import UnreadableFile

GATEWAY_RETRIES = 5  # attempts after the first, while the gateway stays unreachable
GATEWAY_RETRY_WAIT = 60.0  # seconds before each: about the length of IB Gateway's restart


@contextmanager
def one_sentence_failures() -> Iterator[None]:
    """Turn the project's own errors into a dg.Failure whose description is their sentence; an
    unreachable gateway into a retry of the step first (bad input is never retried)."""
    try:
        yield
    except (GatewayUnavailable, SharedStateError) as exc:
        if _retries_so_far() < GATEWAY_RETRIES:
            raise dg.RetryRequested(GATEWAY_RETRIES, GATEWAY_RETRY_WAIT) from exc
        retried = f"(Tried {GATEWAY_RETRIES} more times, {GATEWAY_RETRY_WAIT:.0f} s apart.)"
        raise dg.Failure(description=f"{exc} {retried}") from exc
    except (IBWError, UniverseError, GatewaysError, UnreadableFile) as exc:
        raise dg.Failure(description=str(exc)) from exc


def _retries_so_far() -> int:
    """How often the running step was retried (none outside a run)."""
    try:
        return dg.OpExecutionContext.get().retry_number
    except dg.DagsterInvariantViolationError:
        return GATEWAY_RETRIES  # outside a step: nothing to retry, fail at once

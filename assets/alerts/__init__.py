"""The alerts domain: what Dagster sees going wrong, sent through `engines.alerts` to the
channels of IBW_ALERT_URLS and recorded in the `alerts` dataset (`sensors`): a failed run, the
nightly account snapshot missing after its deadline, a login's pacing budget spent for too long.
The live service raises its own (live.alerting); both share one de-duplication state."""

import dagster as dg

from assets.alerts.sensors import (
    build_snapshot_missing_sensor,
    pacing_exhausted,
    run_failed,
    run_succeeded,
)


def definitions(region: str) -> dg.Definitions:
    """The alert sensors, the snapshot's deadline that of `region`'s nightly schedule."""
    return dg.Definitions(
        sensors=[run_failed, run_succeeded, build_snapshot_missing_sensor(region), pacing_exhausted]
    )

"""Sensors evaluated as Dagster's daemon evaluates them, without the daemon: the result's
dynamic partitions are added or deleted and its asset events reported to the instance."""

from __future__ import annotations

import dagster as dg


def evaluate(
    defs: dg.Definitions, name: str, instance: dg.DagsterInstance, cursor: str | None = None
) -> dg.SensorResult | dg.SkipReason:
    """One tick of the sensor `name` of `defs`, applied to `instance` (runs are not launched)."""
    sensor = defs.resolve_sensor_def(name)
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=defs.resources, definitions=defs
    )
    result = sensor(context)
    if isinstance(result, dg.SensorResult):
        for event in result.asset_events:
            instance.report_runless_asset_event(event)
        for request in result.dynamic_partitions_requests:
            name = request.partitions_def_name
            if isinstance(request, dg.DeleteDynamicPartitionsRequest):
                for key in request.partition_keys:
                    instance.delete_dynamic_partition(name, key)
            else:
                instance.add_dynamic_partitions(name, request.partition_keys)
    return result

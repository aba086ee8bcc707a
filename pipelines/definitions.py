"""The Dagster code location loaded by workspace.yaml.

Assets, resources, partitions, sensors and schedules join it as the universe, backfill and
snapshot issues land.
"""

import dagster as dg

defs = dg.Definitions()

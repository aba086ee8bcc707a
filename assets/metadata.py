"""What the Dagster UI shows about a dataset before anything runs: its columns (from the pandera
model that validates every row written), the DuckDB view analysts query it by, and who owns it.

One function per fact, so every asset of every domain says it the same way and a schema change
in `warehouse.schemas` reaches the UI without an edit here.
"""

from __future__ import annotations

import dagster as dg

from warehouse.catalog import ATTACHED_AS
from warehouse.schemas import SCHEMAS

# Dagster owners are emails or `team:` names; one team keeps every dataset of this project.
OWNERS = ["team:ib-warehouse"]


def column_schema(dataset: str) -> dg.TableSchema:
    """The dataset's columns as its pandera model declares them, lineage columns included."""
    columns = SCHEMAS[dataset].to_schema().columns
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name,
                str(column.dtype),
                description=column.description,
                constraints=dg.TableColumnConstraints(
                    nullable=column.nullable,
                    unique=column.unique,
                    other=[check.error or check.name for check in column.checks],
                ),
            )
            for name, column in columns.items()
        ]
    )


def dataset_metadata(dataset: str, view: str | None = None) -> dict[str, object]:
    """Definition metadata of an asset stored as `dataset`: its column schema and the DuckDB
    view analysts query (`view`, default the dataset's name), e.g. `warehouse.bars`."""
    return {
        "dagster/column_schema": column_schema(dataset),
        "dagster/table_name": f"{ATTACHED_AS}.{view or dataset}",
        "dataset": dataset,
    }

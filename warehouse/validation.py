"""Split a frame into the rows a dataset accepts and the rows it quarantines, with reasons.

pandera finds the failures (`validate(lazy=True)` reports every failing row, not the first); this
module turns them into one readable sentence per row. Columns are coerced here, one at a time,
before pandera sees the frame, so a value that cannot convert is blamed on its own row and column
(pandera's own coercion blames the whole frame and then trips its later checks on the leftovers).
Every input row comes out exactly once, in one of the two frames.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from warehouse.schemas import SCHEMAS, polars_schema


def split_valid(df: pl.DataFrame, dataset: str, origin: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(valid rows coerced to the dataset's schema, rejected rows in the Quarantine schema)."""
    if dataset not in SCHEMAS:
        raise ValueError(f"no schema for dataset {dataset!r}; known: {', '.join(SCHEMAS)}")
    model = SCHEMAS[dataset]
    schema = model.to_schema()
    stored = polars_schema(dataset)
    row_reasons: dict[int, list[str]] = defaultdict(list)
    problems = _column_problems(df, list(stored))
    if not problems:
        coerced, problems, unconverted = _coerce(df, schema, row_reasons)
        if not problems:
            problems = _check(model, schema, coerced, row_reasons, unconverted)
    if problems:
        everyone = {i: ["; ".join(problems)] for i in range(df.height)}
        rejected = _quarantine_rows(df, list(everyone), everyone, dataset, origin)
        return pl.DataFrame(schema=stored), rejected
    bad = sorted(row_reasons)
    valid = coerced.with_row_index("_row").filter(~pl.col("_row").is_in(bad)).select(list(stored))
    return valid, _quarantine_rows(df, bad, row_reasons, dataset, origin)


def _column_problems(df: pl.DataFrame, columns: list[str]) -> list[str]:
    """Missing or unexpected columns: the whole frame is wrong, so every row goes."""
    problems = []
    missing = [c for c in columns if c not in df.columns]
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    extra = [c for c in df.columns if c not in columns]
    if extra:
        problems.append(f"unexpected column(s): {', '.join(extra)}")
    return problems


def _coerce(
    df: pl.DataFrame, schema: pa.DataFrameSchema, row_reasons: dict[int, list[str]]
) -> tuple[pl.DataFrame, list[str], set[tuple[int, str]]]:
    """Cast each column to its schema type; values that do not convert are row failures, a
    column whose type cannot convert at all (text to a date, a list to a number) a frame one.

    Also returns the (row, column) cells that did not convert: they are null now, and what
    pandera says about them would only repeat the failure."""
    columns, problems, unconverted = [], [], set()
    for name, column in schema.columns.items():
        source = df.get_column(name)
        target = column.dtype.type
        try:
            cast = source.cast(target, strict=False)
        except pl.exceptions.PolarsError:
            problems.append(f"{name}: cannot convert {source.dtype} to {target}")
            continue
        lost = source.is_not_null() & cast.is_null()
        if source.dtype.is_float() and target.is_integer():
            lost = lost | (cast.cast(source.dtype) != source).fill_null(False)
        for i in lost.arg_true().to_list():
            row_reasons[i].append(f"{name}: cannot convert {source[i]!r} to {target}")
            unconverted.add((i, name))
        columns.append(cast)
    return pl.DataFrame(columns), problems, unconverted


def _check(
    model: type[pa.DataFrameModel],
    schema: pa.DataFrameSchema,
    df: pl.DataFrame,
    row_reasons: dict[int, list[str]],
    unconverted: set[tuple[int, str]],
) -> list[str]:
    """Run pandera; add each row's failures to `row_reasons`, return the frame-level ones."""
    try:
        model.validate(df, lazy=True)
    except SchemaErrors as err:
        failures = err.failure_cases
    else:
        return []
    problems = []
    for case in failures.iter_rows(named=True):
        index = case["index"]
        if (index, case["column"]) in unconverted:
            continue
        reason = _reason(schema, case)
        if index is None:
            problems.append(reason)
        elif reason not in row_reasons[index]:
            row_reasons[index].append(reason)
    return list(dict.fromkeys(problems))


def _reason(schema: pa.DataFrameSchema, case: dict) -> str:
    """One failure case as `column: rule (got value)`."""
    check, column, got = case["check"], case["column"], case["failure_case"]
    if case["schema_context"] != "Column":
        if check == "multiple_fields_uniqueness":
            return f"duplicate ({', '.join(schema.unique or [])})"
        return check if got is None or got.startswith("{") else f"{check} (got {got})"
    if check == "not_nullable":
        return f"{column}: must not be null" + ("" if got in (None, "null") else f" (got {got})")
    rule = next(
        (_describe(c) for c in schema.columns[column].checks if str(c.error or c.name) == check),
        check,
    )
    return f"{column}: {rule} (got {got})"


def _describe(check: pa.Check) -> str:
    """pandera's built-in checks in words, e.g. `greater_than(0)` as `must be > 0`."""
    stats = check.statistics or {}
    match check.name:
        case "greater_than":
            return f"must be > {stats['min_value']}"
        case "greater_than_or_equal_to":
            return f"must be >= {stats['min_value']}"
        case "less_than":
            return f"must be < {stats['max_value']}"
        case "less_than_or_equal_to":
            return f"must be <= {stats['max_value']}"
        case "isin":
            return f"must be one of {', '.join(map(str, stats['allowed_values']))}"
        case "str_matches":
            return f"must match {stats['pattern']}"
        case "str_length" if stats.get("min_value") == 1 and stats.get("max_value") is None:
            return "must not be empty"
    return str(check.error or check.name)


def _quarantine_rows(
    df: pl.DataFrame,
    rejected: list[int],
    row_reasons: dict[int, list[str]],
    dataset: str,
    origin: str,
) -> pl.DataFrame:
    """The rejected input rows, as they arrived (JSON), each with its reasons joined by '; '."""
    now = datetime.now(UTC)
    rows = df.with_row_index("_row").filter(pl.col("_row").is_in(rejected)).drop("_row")
    return pl.DataFrame(
        {
            "dataset": [dataset] * len(rejected),
            "reason": ["; ".join(row_reasons[i]) for i in rejected],
            "origin": [origin] * len(rejected),
            "row": [json.dumps(r, default=str) for r in rows.iter_rows(named=True)],
            "quarantined_at": [now] * len(rejected),
        },
        schema=polars_schema("quarantine"),
    )

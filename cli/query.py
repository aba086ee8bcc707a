"""`ibw query "SQL"`: ask the warehouse catalog, read-only, and print the answer as a table."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table
from rich.text import Text

from warehouse import layout
from warehouse.catalog import CatalogMissing, NotARead, check_read_only, connect_readonly

_FETCH = 10_000


def add_query_command(commands: argparse._SubParsersAction) -> None:
    """Register `query` on the `ibw` subcommands."""
    query = commands.add_parser("query", help="run SQL on the warehouse catalog (read-only)")
    query.add_argument("sql", help='the SQL, e.g. "SELECT * FROM security_master_current"')
    query.add_argument(
        "--home", type=Path, default=None, help="warehouse home (default: $IBW_HOME or ./.ibw)"
    )
    query.add_argument("--limit", type=_non_negative, default=50, help="rows to show (default 50)")
    query.set_defaults(run=run_query)


def run_query(args: argparse.Namespace) -> int:
    out, err = Console(), Console(stderr=True)
    home = (args.home or layout.home()).resolve()
    try:
        columns, rows, total = _ask(home, args.sql, args.limit)
    except (CatalogMissing, NotARead) as exc:
        err.print(_error(str(exc)), soft_wrap=True)
        return 1
    except duckdb.PermissionException as exc:
        lake = layout.lake_dir(home)
        err.print(_error(f"{_one_line(exc)}: a query reads only the lake, {lake}"), soft_wrap=True)
        return 1
    except duckdb.Error as exc:
        err.print(_error(_one_line(exc)), soft_wrap=True)
        return 1
    out.print(_table(columns, rows))
    noun = "row" if total == 1 else "rows"
    if total > len(rows):
        out.print(f"{len(rows)} of {total:,} {noun} shown (raise --limit to see more)")
    else:
        out.print(f"{total:,} {noun}")
    return 0


def _ask(home: Path, sql: str, limit: int) -> tuple[list[str], list[tuple], int]:
    """The columns, the first `limit` rows and the row count of a query that only reads."""
    check_read_only(sql)
    with connect_readonly(home) as con:
        result = con.execute(sql)
        columns = [d[0] for d in result.description or []]
        rows = result.fetchmany(limit) if limit else []
        return columns, rows, len(rows) + _count_rest(result)


def _count_rest(result: duckdb.DuckDBPyConnection) -> int:
    """Count the rows not shown, a chunk at a time, without keeping them."""
    rest = 0
    while chunk := result.fetchmany(_FETCH):
        rest += len(chunk)
    return rest


def _table(columns: list[str], rows: list[tuple]) -> Table:
    """Cells as plain Text: a value like `[red]` is data, not rich markup."""
    table = Table()
    for column in columns:
        table.add_column(Text(column))
    for row in rows:
        table.add_row(*(Text("NULL", style="dim") if v is None else Text(str(v)) for v in row))
    return table


def _error(sentence: str) -> Text:
    return Text.assemble(("ibw query: ", "red"), sentence)


def _one_line(exc: duckdb.Error) -> str:
    """DuckDB's message without the SQL excerpt and caret it appends after a blank line."""
    head = str(exc).strip().split("\n\n", 1)[0]
    return " ".join(head.split())


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value

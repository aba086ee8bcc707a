"""The DuckDB catalog: `$IBW_HOME/warehouse.duckdb`, one view per dataset over the Parquet lake.

The file holds views only; the data stays in Parquet, and each view's glob is resolved when it is
queried, so a reader sees every partition written since it connected without reopening.

Why the catalog is rebuilt next door and renamed into place: an open read-only DuckDB connection
holds a shared lock on the file, so opening that file read-write (to replace its views) fails for
as long as any analyst has it open. A fresh file built under a temp name takes no lock anyone
holds, and `os.replace` swaps it in atomically; readers connected earlier keep the old file (the
old inode) and its views, which still point at the live lake. Needs POSIX rename semantics.

The views read the lake by absolute path, so any DuckDB client can open the file from any folder
(DuckDB would resolve a relative path against the reader's cwd). The catalog records the lake it
was built for, and `connect_readonly` rebuilds it when the home has been copied or moved since.

Read-only is enforced twice: `check_read_only` lets through only statements that read, and every
connection `connect_readonly` hands out reads no file outside the lake, installs and loads no
extension, and cannot change its own settings. Only the statement check keeps a query from
writing inside the lake or attaching the catalog file again read-write: DuckDB has no setting for
a directory it may read but not write, and it keeps allowing the file it attached.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from pathlib import Path

import duckdb
import polars as pl

from warehouse import layout
from warehouse.live_streams import DEDUPLICATED_VIEWS, RAW_SUFFIX
from warehouse.parquet import fsync_dir
from warehouse.schemas import polars_schema
from warehouse.unreadable import set_aside_unreadable

ATTACHED_AS = "warehouse"
# Where the catalog records the lake its views read (its own schema keeps it out of SHOW TABLES).
RECORD_SCHEMA = "ibw"
BUILT_FOR = f"{RECORD_SCHEMA}.built_for"
# A half-built catalog this old belongs to a refresh that died.
STALE_BUILD_SECONDS = 3600.0


class CatalogMissing(FileNotFoundError):
    """No catalog has been built under this home yet."""


class CatalogElsewhere(CatalogMissing):
    """The catalog was built for another home (a copy or a move) and cannot be rebuilt here."""


class NotARead(ValueError):
    """A statement that could change something, refused on a read-only catalog."""


# EXPLAIN ANALYZE runs the statement it explains, so only the explaining of a SELECT is a read.
_EXPLAIN = re.compile(r"EXPLAIN\s+(?:ANALYZE\s+|\([^)]*\)\s*)?(?P<explained>.*)", re.I | re.S)


# Each underlying's daily implied vol (IB's OPTION_IMPLIED_VOLATILITY: its options' 30-day
# at-the-money vol) beside its realised vol (HISTORICAL_VOLATILITY), from the bars the backfill
# keeps for the option windows' underlyings; both annualised, as fractions (0.18 is 18%).
IV_HISTORY = """
CREATE VIEW iv_history AS
SELECT m.symbol, b.con_id, b.session_date,
       max(b.close) FILTER (WHERE b.what_to_show = 'OPTION_IMPLIED_VOLATILITY') AS implied_vol,
       max(b.close) FILTER (WHERE b.what_to_show = 'HISTORICAL_VOLATILITY') AS historical_vol
FROM bars b JOIN security_master_current m USING (con_id)
WHERE b.bar_size = '1 day'
  AND b.what_to_show IN ('OPTION_IMPLIED_VOLATILITY', 'HISTORICAL_VOLATILITY')
GROUP BY ALL
"""


def refresh_catalog(home: Path) -> Path:
    """(Re)build the catalog from what the lake holds now and swap it in; returns its path."""
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    set_aside_unreadable(home)  # one bad file must not take down every view over its dataset
    target = layout.catalog_path(home)
    _remove_stale_builds(target)
    build = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    try:
        con = duckdb.connect(str(build))
        try:
            _create_views(con, home)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(build, target)
    finally:
        for leftover in (build, build.with_name(build.name + ".wal")):
            leftover.unlink(missing_ok=True)
    fsync_dir(home)
    return target


def connect_readonly(home: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the catalog, with timestamps shown in UTC.

    The file is ATTACHed to a fresh in-memory database rather than opened with
    `duckdb.connect(path, read_only=True)`: DuckDB caches a database per path within a process,
    so a second plain connect would reuse the first one's catalog (the file as it was before the
    last refresh) for as long as the first stays open. A catalog built for another place (the
    home was copied or moved) is rebuilt first. The connection may read the lake and nothing
    else, and its settings are locked; SQL from outside the code must still pass
    `check_read_only` (see the module's docstring).
    """
    home = home.resolve()
    path = layout.catalog_path(home)
    if not path.is_file():
        raise CatalogMissing(
            f"no warehouse at {path} yet: run `ibw demo` or materialize the assets first"
        )
    con = _attach(path)
    built_for = _built_for(con)
    if built_for != str(layout.lake_dir(home)):
        con.close()
        try:
            refresh_catalog(home)
        except OSError as exc:
            raise CatalogElsewhere(
                f"{path} reads the lake at {built_for} and cannot be rebuilt for this home "
                f"({exc.strerror}): run any ibw command as a user who may write {home}"
            ) from exc
        con = _attach(path)
    lake = f"{layout.lake_dir(home)}{os.sep}"
    # The order matters: the allowed directories cannot change once external access is off.
    for setting in (
        "TimeZone = 'UTC'",
        f"allowed_directories = [{_literal(lake)}]",
        "enable_external_access = false",
        "autoinstall_known_extensions = false",
        "autoload_known_extensions = false",
        "lock_configuration = true",
    ):
        con.execute(f"SET {setting}")
    return con


def check_read_only(sql: str) -> None:
    """Refuse `sql` unless every statement in it only reads: SELECT (and what DuckDB parses as
    one: FROM, WITH, VALUES, DESCRIBE, SHOW, SUMMARIZE) or EXPLAIN of a SELECT.

    Raises `NotARead` naming the first statement that is not a read; a statement DuckDB cannot
    parse raises DuckDB's own parser error.
    """
    for statement in duckdb.extract_statements(sql):
        if not _reads_only(statement):
            raise NotARead(
                f"{_statement_name(statement)} is refused: the warehouse catalog is read-only, "
                "so only SELECT, DESCRIBE, SHOW and EXPLAIN of a SELECT run on it"
            )


def _reads_only(statement: duckdb.Statement) -> bool:
    if statement.type == duckdb.StatementType.SELECT:
        return True
    if statement.type != duckdb.StatementType.EXPLAIN:
        return False
    explain = _EXPLAIN.fullmatch(statement.query.strip())
    if explain is None:
        return False
    explained = duckdb.extract_statements(explain["explained"])
    return len(explained) == 1 and explained[0].type == duckdb.StatementType.SELECT


def _statement_name(statement: duckdb.Statement) -> str:
    """The statement's first word as written (USE, INSTALL), else the type DuckDB parsed."""
    first = statement.query.split(maxsplit=1)[0].upper() if statement.query.strip() else ""
    return first if first.isalpha() and first != "WITH" else statement.type.name


def _attach(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"ATTACH {_literal(path)} AS {ATTACHED_AS} (READ_ONLY)")
    con.execute(f"USE {ATTACHED_AS}")
    return con


def _built_for(con: duckdb.DuckDBPyConnection) -> str | None:
    """The lake the attached catalog's views read (None for a catalog that does not say)."""
    try:
        return con.sql(f"SELECT lake FROM {BUILT_FOR}").fetchall()[0][0]
    except duckdb.CatalogException:
        return None


def _create_views(con: duckdb.DuckDBPyConnection, home: Path) -> None:
    lake = layout.lake_dir(home)
    con.execute(f"CREATE SCHEMA {RECORD_SCHEMA}")
    con.execute(f"CREATE TABLE {BUILT_FOR} AS SELECT {_literal(lake)} AS lake")
    datasets = sorted(
        d.name
        for d in (lake.iterdir() if lake.is_dir() else [])
        if d.is_dir() and layout.is_name(d.name) and layout.data_files(d)
    )
    for dataset in datasets:
        folder = layout.dataset_dir(home, dataset)
        # Absolute: a view resolves its paths at query time, from the reader's cwd.
        files = _literal(folder / "**" / "*.parquet")
        # A live dataset's raw files may hold a row twice; analysts query its deduplicating view.
        deduplicated = DEDUPLICATED_VIEWS.get(dataset)
        raw = f"{dataset}{RAW_SUFFIX}" if deduplicated else dataset
        con.execute(
            f'CREATE VIEW "{raw}" AS SELECT * FROM read_parquet({files}, '
            f"hive_partitioning = true, union_by_name = true{_hive_types(con, folder)})"
        )
        if deduplicated:
            con.execute(f'CREATE VIEW "{dataset}" AS ' + deduplicated.format(raw=f'"{raw}"'))
    if "security_master" in datasets:
        con.execute(
            "CREATE VIEW security_master_current AS "
            "SELECT * FROM security_master WHERE valid_to IS NULL"
        )
    if {"bars", "security_master"} <= set(datasets):
        con.execute(IV_HISTORY)
    if "quarantine" not in datasets:
        # Analysts can always ask the quarantine; before any rejects it is an empty table.
        empty_quarantine = pl.DataFrame(schema=polars_schema("quarantine"))
        con.register("empty_quarantine", empty_quarantine)
        con.execute("CREATE TABLE quarantine AS SELECT * FROM empty_quarantine")
        con.unregister("empty_quarantine")


def _hive_types(con: duckdb.DuckDBPyConnection, folder: Path) -> str:
    """`, hive_types = {...}` giving each partition key the type it has inside the files.

    Left alone, DuckDB guesses from the folder name and the guess wins over the file (a text
    `day=2024-07-11` becomes a DATE), so the view and polars would disagree.
    """
    first = layout.data_files(folder)[0]
    keys = [p.split("=", 1)[0] for p in first.relative_to(folder).parts[:-1] if "=" in p]
    query = f"DESCRIBE SELECT * FROM read_parquet({_literal(first)}, hive_partitioning = false)"
    described = con.sql(query).fetchall()
    types = {name: kind for name, kind, *_ in described if name in keys}
    if not types:
        return ""
    return ", hive_types = {" + ", ".join(f"'{k}': '{t}'" for k, t in types.items()) + "}"


def _literal(text: str | Path) -> str:
    """A path (or any text) as a SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def _remove_stale_builds(target: Path) -> None:
    cutoff = time.time() - STALE_BUILD_SECONDS
    for build in target.parent.glob(f".{target.name}.*.tmp*"):
        with contextlib.suppress(FileNotFoundError):
            if build.stat().st_mtime < cutoff:
                build.unlink()

"""Where the warehouse lives: every path under `$IBW_HOME` (and `$IBW_LAKE`) is computed here
and nowhere else.

The lake (every dataset, the coverage ledger included) and the files set aside from it live
under `$IBW_LAKE` when it is set: a filesystem several machines mount, which must give atomic
rename within it and durable fsync (see docs/PRODUCTION.md). What one machine keeps for itself
stays under `$IBW_HOME`: its DuckDB catalog, logs, journal and, without PostgreSQL, its pacing
logs and locks."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

# Dataset names become folder names and DuckDB view names, so keep them plain identifiers.
_NAME = re.compile(r"[a-z][a-z0-9_]*")
DATA_FILE = "part.parquet"


def home() -> Path:
    """`$IBW_HOME`, default `./.ibw`, made absolute so views and logs never depend on the cwd."""
    return Path(os.environ.get("IBW_HOME") or ".ibw").resolve()


def lake_root(home: Path) -> Path:
    """`$IBW_LAKE` when set (shared by several machines), else the home."""
    shared = os.environ.get("IBW_LAKE", "").strip()
    return Path(shared).resolve() if shared else home


def lake_dir(home: Path) -> Path:
    return lake_root(home) / "lake"


def catalog_path(home: Path) -> Path:
    return home / "warehouse.duckdb"


def unreadable_dir(home: Path) -> Path:
    """Where unreadable lake files are moved aside: outside the lake, so no view globs them, and
    on its filesystem, so the move is a rename."""
    return lake_root(home) / "unreadable"


def is_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def check_name(name: str, what: str = "dataset") -> str:
    """Refuse names that could escape the lake or break a SQL identifier."""
    if not is_name(name):
        raise ValueError(f"{what} name {name!r} must be lowercase letters, digits and underscores")
    return name


def dataset_dir(home: Path, dataset: str) -> Path:
    return lake_dir(home) / check_name(dataset)


def partition_value(value: str) -> str:
    """Percent-encode a partition value for a folder name.

    DuckDB and polars both decode `%XX` in hive folder names, so readers see the original value.
    A leading dot is encoded too: it would hide the folder (or make it `..`).
    """
    encoded = quote(str(value), safe="")
    if not encoded:
        raise ValueError("a partition value must not be empty")
    return "%2E" + encoded[1:] if encoded.startswith(".") else encoded


def partition_dir(home: Path, dataset: str, partition: dict[str, str] | None = None) -> Path:
    """`lake/<dataset>/<k1>=<v1>/...`, keys in the order given."""
    folder = dataset_dir(home, dataset)
    for key, value in (partition or {}).items():
        folder = folder / f"{check_name(key, 'partition key')}={partition_value(value)}"
    return folder


def data_files(folder: Path) -> list[Path]:
    """The Parquet files under a folder that readers may see, sorted.

    Temp files of a writer (`.part.parquet.<random>.tmp`) and anything hidden are never data.
    """
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*.parquet")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )

"""The universe file: the one that ships with the project unless $IBW_UNIVERSE names another,
read into a `Universe` with one sentence for a missing or broken file. Shared by the Dagster
universe resource and `ibw plan`/`ibw backfill`."""

from __future__ import annotations

import os
from pathlib import Path

from engines.yaml_file import read_yaml
from ibkr.universe import Universe, UniverseError, parse_universe

DEFAULT_UNIVERSE = Path(__file__).with_name("universe.yml")


def universe_path() -> str:
    """$IBW_UNIVERSE, or the universe that ships with the project."""
    return os.environ.get("IBW_UNIVERSE", str(DEFAULT_UNIVERSE))


def load_universe(path: str | Path) -> Universe:
    """The universe in the YAML file at `path`."""
    data = read_yaml(path, "universe", "create it or point IBW_UNIVERSE at one", UniverseError)
    return parse_universe(data, Path(path).name)

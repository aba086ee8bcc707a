"""Universe files and the Dagster resources that read them: what a run needs to point at a
gateway, a warehouse home and a universe."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import yaml

from assets.resources import DEFAULT_UNIVERSE, IBResource, UniverseResource, WarehouseResource


def write_universe(
    folder: Path,
    extra_entries: Sequence[dict] = (),
    bars: list[dict] | None = None,
    entries: list[dict] | None = None,
) -> Path:
    """`folder`/universe.yml: the default universe's entries (or `entries`) plus `extra_entries`,
    and the bar series `bars` if given: then those are all its series (the option windows'
    volatility series are left out)."""
    data = yaml.safe_load(DEFAULT_UNIVERSE.read_text())
    if entries is not None:
        data = {"entries": list(entries)}
    data["entries"] += extra_entries
    if bars is not None:
        data["bars"] = bars
        for window in data.get("options") or []:
            window["iv_history"] = "none"
    path = folder / "universe.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def dagster_resources(gw, home: Path, universe: Path, client_id: int) -> dict:
    """The resources a Dagster run needs: the gateway `gw`, the warehouse `home`, `universe`."""
    return {
        "ib": IBResource(port=gw.port, client_id=client_id),
        "warehouse": WarehouseResource(home=str(home)),
        "universe": UniverseResource(path=str(universe)),
    }


def check_named(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    """The one evaluation of check `name` in a run's result."""
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation

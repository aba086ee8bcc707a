"""The IB logins of this deployment: the `gateways:` section of the YAML file $IBW_GATEWAYS
names, or, without it, the one login of IB_HOST / IB_PORT / IB_CLIENT_ID. Shared by the Dagster
resources and the command line."""

from __future__ import annotations

import os
from pathlib import Path

from engines.yaml_file import read_yaml
from ibkr.gateways import GatewaysError, Login, login_from_env, parse_gateways

GATEWAYS = "IBW_GATEWAYS"


def load_logins(path: str | Path | None = None) -> tuple[Login, ...]:
    """The logins of the file at `path` (default $IBW_GATEWAYS), or the one from the
    environment when neither names a file."""
    path = path or os.environ.get(GATEWAYS)
    if not path:
        return (login_from_env(),)
    fix = f"create it or unset {GATEWAYS} for one login"
    return parse_gateways(read_yaml(path, "gateways", fix, GatewaysError), Path(path).name)

"""Reading a YAML settings file, its failures as one sentence of the caller's error class."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml


def read_yaml(path: str | Path, what: str, fix: str, error: Callable[[str], Exception]) -> object:
    """The YAML document at `path`; a missing file or broken YAML raises `error` with one
    sentence (`what`: the kind of file, e.g. "universe"; `fix`: what to do when it is missing)."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except FileNotFoundError as exc:
        raise error(f"No {what} file at {path}: {fix}.") from exc
    except yaml.YAMLError as exc:
        mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
        where = f" at line {mark.line + 1}" if mark else ""
        why = f" ({problem})" if problem else ""
        raise error(f"{path} is not valid YAML{where}{why}: fix its syntax.") from exc

"""Fault scripts: which faults of IB's servers and of the Gateway (ibsim.server.faults) to run,
when, and with what arguments, read and checked from YAML (`ibw gateway --faults FILE`).

A script is a YAML list of entries such as `{after: 30, fault: connectivity_lost}` or
`{every: 600, fault: drop_clients}`: `after` and `every` are real seconds from the gateway's
start, the other keys are the fault's arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from ibsim.market import errors

# Each fault a script may name, with the arguments it takes (and their types).
ARGUMENTS: dict[str, dict[str, type]] = {
    "connectivity_lost": {},
    "connectivity_restored": {"data_kept": bool},
    "farm_status": {"code": int, "client_id": int},
    "drop_clients": {"client_id": int},
    "stall": {"seconds": float, "client_id": int},
    "restart": {"refuse_for": float},
}
REQUIRED = {"farm_status": ("code",), "stall": ("seconds",)}
EXAMPLE = "`- {after: 30, fault: connectivity_lost}`"


class FaultScriptError(ValueError):
    """A fault script that cannot be read; the message is one sentence."""


@dataclass(frozen=True)
class Fault:
    """One entry of a fault script: the Gateway method, when, and its arguments."""

    fault: str
    after: float | None = None  # real seconds from the gateway's start to the first time
    every: float | None = None  # then again every so many seconds
    params: tuple[tuple[str, object], ...] = ()


def load_faults(path: str | Path) -> tuple[Fault, ...]:
    """The fault script in a YAML file; FaultScriptError (one sentence) if it cannot be read."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FaultScriptError(
            f"Cannot read the fault script {path} ({exc.strerror or exc})."
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise FaultScriptError(f"The fault script {path} is not valid YAML{at}.") from None
    return parse_faults(data, f"The fault script {path}")


def parse_faults(data: object, source: str = "The fault script") -> tuple[Fault, ...]:
    """Check a script's entries (a list of mappings) and return them as Faults."""
    if not isinstance(data, list) or not data:
        raise FaultScriptError(f"{source} is not a list of faults like {EXAMPLE}.")
    return tuple(_entry(item, f"{source}, entry {n}") for n, item in enumerate(data, 1))


def _entry(item: object, where: str) -> Fault:
    if not isinstance(item, Mapping):
        raise FaultScriptError(f"{where} is not a mapping like {EXAMPLE[2:]}.")
    fields = dict(item)
    name = fields.pop("fault", None)
    if name not in ARGUMENTS:
        raise FaultScriptError(
            f"{where} names the fault {name!r}, which is none of {', '.join(ARGUMENTS)}."
        )
    after = _number(fields.pop("after", None), "after", where)
    every = _number(fields.pop("every", None), "every", where)
    if after is None and every is None:
        raise FaultScriptError(f"{where} needs `after` or `every` (real seconds from the start).")
    if every == 0:
        raise FaultScriptError(f"{where} has `every: 0`; repeat after a positive number of s.")
    params = {key: _argument(name, key, value, where) for key, value in fields.items()}
    missing = [key for key in REQUIRED.get(name, ()) if key not in params]
    if missing:
        raise FaultScriptError(f"{where} lacks the argument {missing[0]!r} that {name} needs.")
    if name == "farm_status" and params["code"] not in errors.FARM_STATUS:
        known = ", ".join(map(str, errors.FARM_STATUS))
        raise FaultScriptError(
            f"{where} has farm status code {params['code']}; use one of {known}."
        )
    return Fault(name, after, every, tuple(sorted(params.items())))


def _number(value: object, key: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultScriptError(f"{where} has `{key}: {value}`, not a number of seconds >= 0.")
    return float(value)


def _argument(name: str, key: str, value: object, where: str) -> object:
    kind = ARGUMENTS[name].get(key)
    if kind is None:
        takes = ", ".join(ARGUMENTS[name]) or "no arguments"
        raise FaultScriptError(f"{where} gives {name} the unknown argument {key!r} ({takes}).")
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    if not ok:
        raise FaultScriptError(f"{where} has `{key}: {value}`, which is not a {kind.__name__}.")
    return float(value) if kind is float else value

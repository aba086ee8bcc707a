"""The partitions of `bars`: one per contract, keyed so a person can read it (`AAPL.265598`,
`ESZ5.495202512`, `EUR.USD.12087792`), and the partition ranges of batched runs.

A key is the contract's local symbol (or symbol) and its conId after the LAST dot; the conId is
what the code reads back, the symbol is for the eye (a symbol IB renames later keeps its old
key, which still names the same conId). Keys are added in the order the backfill sensor first
sees the contracts, and a run covers a contiguous range of that order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import dagster as dg

contract_partitions = dg.DynamicPartitionsDefinition(name="bar_contracts")
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
PARTITION = "dagster/partition"
DOTS = re.compile(r"\.{2,}")


def contract_partition_key(symbol: str, con_id: int) -> str:
    """`<symbol>.<conId>`: whitespace and control characters become `_`, and runs of dots one
    dot (Dagster refuses `...` and control characters in a key)."""
    readable = "".join(c if c.isprintable() and not c.isspace() else "_" for c in symbol)
    return f"{DOTS.sub('.', readable)}.{con_id}"


def con_id_of(key: str) -> int:
    """The conId a partition key names (after its last dot)."""
    return int(key.rsplit(".", 1)[-1])


def range_tags(keys: Sequence[str]) -> dict[str, str]:
    """The run tags of a run over `keys` (contiguous in the partitions' order)."""
    return {RANGE_START: keys[0], RANGE_END: keys[-1]}


def keys_of_run(tags: dict[str, str], order: Sequence[str]) -> list[str]:
    """The partition keys a run covers, from its tags (one key, or a range within `order`)."""
    if PARTITION in tags:
        return [tags[PARTITION]] if tags[PARTITION] in order else []
    start, end = tags.get(RANGE_START), tags.get(RANGE_END)
    if start not in order or end not in order:
        return []
    return list(order[order.index(start) : order.index(end) + 1])

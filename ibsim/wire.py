"""The TWS socket framing: length-prefixed, NUL-separated text fields (server version < 201)."""

from __future__ import annotations

import struct
from collections.abc import Iterable

MAX_FRAME = 0xFFFFFF  # ibapi refuses longer frames (its error 507)
UNSET_DOUBLE = "1.7976931348623157E308"
UNSET_INT = "2147483647"
_UNSET_VALUES = {
    "",
    UNSET_INT,
    "1.7976931348623157e+308",
    UNSET_DOUBLE,
    "9223372036854775807",
    "170141183460469231731687303715884105727",
}


class FrameError(ValueError):
    """A frame the gateway cannot read; the connection that sent it is closed."""


def field(value: object) -> str:
    """Spell one outgoing value the way both clients parse it (bools as 0/1)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def encode(fields: Iterable[object]) -> bytes:
    """One message: every field NUL-terminated, behind a 4-byte big-endian length."""
    payload = "".join(field(f) + "\0" for f in fields).encode("ascii", "replace")
    return struct.pack(">I", len(payload)) + payload


def encode_raw(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def split_frames(buffer: bytearray) -> list[bytes]:
    """Cut every complete frame off the front of `buffer` and return their payloads."""
    frames = []
    while len(buffer) >= 4:
        (size,) = struct.unpack_from(">I", buffer)
        if size > MAX_FRAME:
            raise FrameError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
        if len(buffer) < 4 + size:
            break
        frames.append(bytes(buffer[4 : 4 + size]))
        del buffer[: 4 + size]
    return frames


def decode_fields(payload: bytes) -> list[str]:
    """The text fields of one payload; the trailing NUL ends the last field."""
    text = payload.decode("utf-8", errors="replace")
    parts = text.split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def parse_version_range(payload: bytes) -> tuple[int, int]:
    """The client's `v<min>..<max>[ options]` hello; raises FrameError when it is not one."""
    text = payload.decode("ascii", errors="replace").strip("\0").split(" ", 1)[0]
    if not text.startswith("v"):
        raise FrameError(f"hello {text!r} does not start with 'v'")
    low, sep, high = text[1:].partition("..")
    try:
        return int(low), int(high if sep else low)
    except ValueError as exc:
        raise FrameError(f"hello {text!r} is not v<min>..<max>") from exc


def is_unset(value: str) -> bool:
    return value in _UNSET_VALUES or value in ("Infinite", "Infinity")


def as_int(value: str, default: int = 0) -> int:
    """Parse an int field, reading the clients' spellings of 'unset' as `default`.

    Raises ValueError for anything else that is not a finite integer."""
    if is_unset(value):
        return default
    try:
        return int(float(value)) if "." in value or "e" in value.lower() else int(value)
    except OverflowError as exc:
        raise ValueError(f"{value[:20]!r} is not a finite integer") from exc


def as_float(value: str, default: float = 0.0) -> float:
    return default if is_unset(value) else float(value)


def as_bool(value: str) -> bool:
    return not is_unset(value) and value not in ("0", "false", "False") and bool(value)

"""The TWS socket framing: length-prefixed, NUL-separated text fields (server version < 201)."""

from __future__ import annotations

import struct
from collections.abc import Iterable

from ibsim.handlers.fields import MAX_FRAME, field


class FrameError(ValueError):
    """A frame the gateway cannot read; the connection that sent it is closed."""


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

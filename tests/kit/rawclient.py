"""A bare TWS-protocol client over a socket, for tests that must send what no library would."""

from __future__ import annotations

import socket
import struct

from ibsim.server import framing as wire


def started(gateway, client_id: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.sendall(b"API\0" + wire.encode_raw(b"v157..178"))
    read_frame(sock)
    sock.sendall(wire.encode([71, 2, client_id, ""]))
    next_message(sock, "9")
    return sock


def next_message(sock: socket.socket, msg_id: str) -> list[str]:
    while True:
        fields = wire.decode_fields(read_frame(sock))
        if fields[0] == msg_id:
            return fields


def next_error(sock: socket.socket) -> list[str]:
    while True:
        fields = next_message(sock, "4")
        if fields[3] not in ("2104", "2106", "2158"):
            return fields


def read_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">I", read_exact(sock, 4))
    return read_exact(sock, size)


def read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data

"""Connecting: the handshake, startApi, startup replies, several clients, clientId clashes."""

from __future__ import annotations

import logging
import socket

import pytest
from ib_async import IB

from ibsim.server import framing as wire
from tests.kit.rawclient import next_error, next_message, read_frame, started


def test_connect_completes_without_any_request_timing_out(gateway, connect, caplog):
    caplog.set_level(logging.INFO)
    ib = connect(gateway)
    assert ib.isConnected()
    assert ib.client.serverVersion() == 178
    assert ib.managedAccounts() == ["DU123456"]
    assert ib.client.getReqId() >= 1
    assert not [r for r in caplog.records if "timed out" in r.getMessage()]


def test_current_time_is_the_gateway_clock(ib):
    from tests.kit.gateway import NOW

    assert ib.reqCurrentTime() == NOW


def test_several_clients_at_once(gateway, connect):
    clients = [connect(gateway) for _ in range(3)]
    assert all(c.isConnected() for c in clients)
    times = {c.reqCurrentTime() for c in clients}
    assert len(times) == 1


def test_client_id_in_use_gets_326_and_a_close(gateway, connect):
    connect(gateway, client_id=77)
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.sendall(b"API\0" + wire.encode_raw(b"v157..178"))
    reply = read_frame(sock)
    assert wire.decode_fields(reply)[0] == "178"
    sock.sendall(wire.encode([71, 2, 77, ""]))
    fields = wire.decode_fields(read_frame(sock))
    assert fields[:4] == ["4", "2", "-1", "326"]
    assert "client id is already in use" in fields[4]
    assert sock.recv(1) == b""  # closed by the gateway
    sock.close()


def test_ib_async_sees_the_clash_as_a_failed_connect(gateway, connect):
    connect(gateway, client_id=78)
    second = IB()
    with pytest.raises((TimeoutError, ConnectionError)):
        second.connect("127.0.0.1", gateway.port, clientId=78, timeout=2)
    assert not second.isConnected()


def test_version_is_the_lower_of_client_max_and_178(gateway):
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.sendall(b"API\0" + wire.encode_raw(b"v100..176"))
    assert wire.decode_fields(read_frame(sock))[0] == "176"
    sock.close()


def test_a_client_whose_range_excludes_178_and_below_is_refused(gateway):
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.sendall(b"API\0" + wire.encode_raw(b"v190..200"))
    assert sock.recv(1) == b""
    sock.close()


def test_unknown_message_gets_an_error_and_the_connection_lives(gateway):
    sock = started(gateway, 79)
    sock.sendall(wire.encode([999, 1, 2]))
    fields = next_error(sock)
    assert fields[3] == "320" and "unknown message id 999" in fields[4]
    sock.sendall(wire.encode([49, 1]))
    assert next_message(sock, "49")[0] == "49"
    sock.close()

"""The IB client the assets use: unique client ids, errors that raise, requests counted."""

from __future__ import annotations

import pytest
from ib_async import Stock

from ibkr import errors
from ibkr.client import CLIENT_ID_SPAN, IBClient, client_id_for
from ibkr.connection import ClientIdInUse, ConnectionSettings
from ibkr.connection import connect as open_ib


def test_client_ids_are_stable_per_key_and_spread_over_the_range():
    assert client_id_for("run-1", 100) == client_id_for("run-1", 100)
    ids = {client_id_for(f"run-{i}", 100) for i in range(200)}
    assert all(100 <= i < 100 + CLIENT_ID_SPAN for i in ids)
    assert len(ids) > 150


def test_a_client_id_clash_fails_at_once_in_one_sentence(gateway, connect):
    connect(gateway, client_id=430)
    with pytest.raises(ClientIdInUse) as error:
        open_ib(ConnectionSettings(port=gateway.port, client_id=430, timeout=60))
    assert str(error.value) == (
        f"127.0.0.1:{gateway.port}: client id 430 is already in use; give this client another "
        "IB_CLIENT_ID, or stop the one that holds it (IB 326)."
    )


def test_two_clients_for_the_same_key_get_different_ids(gateway):
    settings = ConnectionSettings(port=gateway.port, client_id=400, timeout=60)
    first = IBClient.open(settings, "same-run")
    try:
        second = IBClient.open(settings, "same-run")  # its first choice is taken: 326, next id
        try:
            assert second.ib.client.clientId == first.ib.client.clientId + 1
        finally:
            second.close()
    finally:
        first.close()


def test_errors_raise_instead_of_returning_empty(ib_client):
    with pytest.raises(errors.ContractNotFound) as error:
        ib_client.run(ib_client.details(Stock("NOPE", "SMART", "USD"), "NOPE"))
    assert str(error.value).startswith("NOPE: no security definition was found")
    assert ib_client.requests == 1


def test_last_close_and_gateway_time(ib_client):
    assert ib_client.run(ib_client.last_close(Stock("AAPL", "SMART", "USD"))) > 0
    assert ib_client.run(ib_client.now()).year == 2024


@pytest.fixture
def ib_client(gateway):
    client = IBClient.open(ConnectionSettings(port=gateway.port, client_id=450), "tests")
    yield client
    client.close()

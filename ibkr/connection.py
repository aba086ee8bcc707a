"""Connecting to IB Gateway or TWS with ib_async: settings from the environment, clear errors."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from ib_async import IB

from ibkr.errors import GatewayUnavailable

CLIENT_ID_IN_USE = 326


@dataclass(frozen=True)
class ConnectionSettings:
    host: str = "127.0.0.1"
    port: int = 4002  # IB Gateway's paper port, where the embedded gateway listens by default
    client_id: int = 1
    timeout: float = 10.0

    @classmethod
    def from_env(cls) -> ConnectionSettings:
        return cls(
            host=os.environ.get("IB_HOST", cls.host),
            port=int(os.environ.get("IB_PORT", cls.port)),
            client_id=int(os.environ.get("IB_CLIENT_ID", cls.client_id)),
        )


class ClientIdInUse(GatewayUnavailable):
    """The gateway refused the client id (326): another client holds it."""


def connect(settings: ConnectionSettings, readonly: bool = True) -> IB:
    """A connected IB client, or GatewayUnavailable with the cause and the fix in one sentence."""
    ib = IB()
    ib.run(connect_async(ib, settings, readonly))
    return ib


async def connect_async(ib: IB, settings: ConnectionSettings, readonly: bool = True) -> None:
    """Connect `ib` (a fresh or a disconnected client), or raise GatewayUnavailable."""
    where = f"{settings.host}:{settings.port}"
    try:
        await _connect_unless_refused(ib, settings, readonly)
    except ClientIdInUse:
        ib.client.disconnect()  # half-connected: IB.disconnect() would ask for session stats
        raise
    except ConnectionRefusedError as exc:
        raise GatewayUnavailable(
            f"Nothing is listening at {where}",
            "start a gateway (`ibw gateway`) or point IB_HOST/IB_PORT at IB Gateway or TWS",
        ) from exc
    except TimeoutError as exc:
        ib.disconnect()
        raise GatewayUnavailable(
            f"The gateway at {where} did not finish the API handshake within "
            f"{settings.timeout:.0f} s",
            f"client id {settings.client_id} may be in use (set IB_CLIENT_ID) or the API is not "
            "enabled in the gateway's settings",
        ) from exc
    except OSError as exc:
        raise GatewayUnavailable(
            f"Cannot reach {where} ({exc.strerror or exc})", "check IB_HOST and IB_PORT"
        ) from exc


async def _connect_unless_refused(ib: IB, settings: ConnectionSettings, readonly: bool) -> None:
    """ib.connect, but a clientId clash (326) fails at once instead of after the full timeout
    that ib_async waits once the gateway has hung up."""
    refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_error(req_id: int, code: int, text: str, contract: object) -> None:
        if code == CLIENT_ID_IN_USE and not refused.done():
            refused.set_result(text)

    ib.errorEvent += on_error
    attempt = asyncio.ensure_future(
        ib.connectAsync(
            settings.host,
            settings.port,
            clientId=settings.client_id,
            timeout=settings.timeout,
            readonly=readonly,
        )
    )
    try:
        await asyncio.wait({attempt, refused}, return_when=asyncio.FIRST_COMPLETED)
        if refused.done() and not attempt.done():
            attempt.cancel()
            raise ClientIdInUse(
                f"client id {settings.client_id} is already in use",
                "give this client another IB_CLIENT_ID, or stop the one that holds it",
                code=CLIENT_ID_IN_USE,
                subject=f"{settings.host}:{settings.port}",
            )
        await attempt
    finally:
        ib.errorEvent -= on_error
        if not refused.done():
            refused.cancel()

"""Connecting to IB Gateway or TWS with ib_async: settings from the environment, clear errors."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ib_async import IB

from ibkr.errors import GatewayUnavailable


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


def connect(settings: ConnectionSettings, readonly: bool = True) -> IB:
    """A connected IB client, or GatewayUnavailable with the cause and the fix in one sentence."""
    ib = IB()
    where = f"{settings.host}:{settings.port}"
    try:
        ib.connect(
            settings.host,
            settings.port,
            clientId=settings.client_id,
            timeout=settings.timeout,
            readonly=readonly,
        )
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
    return ib

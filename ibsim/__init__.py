"""The embedded IB Gateway: a deterministic simulator that speaks the TWS wire protocol.

Layers, each importing only the ones below it:
- `server`: the TCP server, framing, one client connection, the table from message id to
  handler, and the faults that act on connected clients;
- `handlers`: the requests, grouped by family, answered through the `Client` interface;
- `state`: one login's state without sockets (config, clock, catalog, book, pacer, orders);
- `orders`: the order engine, which tells the world what happened through `OrderNews`;
- `config` and `fault_script`: the gateway's settings, and fault scripts;
- `accounts`: the book of accounts and its valuation;
- `market`: instruments, calendars, synthetic prices and bars, IB's request rules, pacing and
  error texts;
- `clock`: the gateway's now.
May import: the standard library, numpy, polars, pyyaml and exchange-calendars, and IB's facts
(`ibfacts`). Imports nothing else from the rest of the project.
"""

from ibsim.clock import ManualClock, SystemClock
from ibsim.config import GatewayConfig, PacingRules
from ibsim.server import Gateway, GatewayThread

__all__ = ["Gateway", "GatewayConfig", "GatewayThread", "ManualClock", "PacingRules", "SystemClock"]

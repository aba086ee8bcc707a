"""The embedded IB Gateway: a deterministic simulator that speaks the TWS wire protocol.

Owns: the socket protocol (server version 178), reference data, the synthetic market, IB's
request rules and pacing, accounts (`book`, `portfolio`, `valuation`, `trades`, `fa`), the
order engine (`orders`, `engine`, `work`, `fills`, `matching`, `order_times`, `conditions`,
`allocation`), streaming (`quotes`, `streaming`, `realtime_bars`) and faults (`faults`). May
import: the standard library, numpy, polars and exchange-calendars. Imports nothing from the rest
of the project.
"""

from ibsim.clock import ManualClock, SystemClock
from ibsim.config import GatewayConfig, PacingRules
from ibsim.server import Gateway, GatewayThread

__all__ = ["Gateway", "GatewayConfig", "GatewayThread", "ManualClock", "PacingRules", "SystemClock"]

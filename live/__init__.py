"""The companion live service: tick and 5-second bar streams, and the order manager.

Users trade through `live.submit`, `live.cancel`, `live.modify` and `live.status` (they write
the order journal; the running service sends). May import: ibkr and warehouse; never assets,
pipelines or ibsim.
"""

from live.api import cancel, modify, status, submit
from live.intents import OrderIntent

__all__ = ["OrderIntent", "cancel", "modify", "status", "submit"]

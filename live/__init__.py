"""The companion live service: tick and 5-second bar streams, and the order manager.

Modules: `service` (the connect/reconcile/serve loop and its faults), `config` (the YAML file
and its streams resolved from the security master), `streams`, `stream_state` and `refill`
(subscriptions, the stale-stream detector, gap refill through the planner and pacer),
`intents`, `safety`, `journal`, `ledger`, `orders`, `reconcile`, `export` and `api` (order
intents, the durable journal, the order manager and what it writes to the warehouse).

Users trade through `live.submit`, `live.cancel`, `live.modify` and `live.status` (they write
the order journal; the running service sends). May import: ibkr and warehouse; never assets,
pipelines or ibsim.
"""

from live.api import cancel, modify, status, submit
from live.intents import OrderIntent

__all__ = ["OrderIntent", "cancel", "modify", "status", "submit"]

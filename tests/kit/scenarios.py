"""Seeded account scenarios for the embedded gateway (the tests' NOW is 2024-07-10 15:00 UTC):
a single paper account, and an FA master with three sub-accounts holding stocks, a future, an
option and FX, cash in several currencies, the day's fills (one commission late, one fill
corrected), open and completed orders, and the FA configuration."""

from __future__ import annotations

from typing import Any

AAPL, MSFT, EURUSD = 265598, 272093, 12087792
ESU4 = 495202409  # ES September 2024, the front month at NOW
SPY_CALL = 628077803  # SPY 240712C00390000

SINGLE: dict[str, Any] = {
    "accounts": [{"id": "DU123456", "base_currency": "USD", "cash": {"USD": 250_000.0}}],
    "positions": [
        {"account": "DU123456", "con_id": AAPL, "quantity": 100, "avg_cost": 180.25},
        {"account": "DU123456", "con_id": ESU4, "quantity": 2, "avg_cost": 274_000.0},
    ],
    "executions": [
        {"exec_id": "0000e0d5.6690a1b1.01.01", "account": "DU123456", "con_id": AAPL,
         "side": "BOT", "shares": 100, "price": 180.25, "time": "2024-07-10T13:45:10Z",
         "order_id": 7, "perm_id": 1_900_000_007, "commission": 1.0},
    ],
    "open_orders": [
        {"order_id": 8, "perm_id": 1_900_000_008, "account": "DU123456", "con_id": MSFT,
         "action": "BUY", "quantity": 10, "order_type": "LMT", "limit_price": 400.0,
         "order_ref": "ibw-k1"},
    ],
    "completed_orders": [
        {"order_id": 7, "perm_id": 1_900_000_007, "account": "DU123456", "con_id": AAPL,
         "action": "BUY", "quantity": 100, "order_type": "MKT", "status": "Filled",
         "filled": 100, "avg_fill_price": 180.25,
         "completed_time": "20240710 09:45:10 America/New_York"},
    ],
}  # fmt: skip

SUBS = ("DU1110001", "DU1110002", "DU1110003")

FA_MASTER: dict[str, Any] = {
    "master": "F1110000",
    "accounts": [
        {"id": SUBS[0], "alias": "Growth", "cash": {"USD": 120_000.0, "EUR": 15_000.0}},
        {"id": SUBS[1], "alias": "Income", "cash": {"USD": 80_000.0, "JPY": 2_000_000.0}},
        {"id": SUBS[2], "alias": "Hedge", "cash": {"USD": 50_000.0, "EUR": 1_000.0}},
    ],
    "positions": [
        {"account": SUBS[0], "con_id": AAPL, "quantity": 60, "avg_cost": 181.0},
        {"account": SUBS[1], "con_id": AAPL, "quantity": 40, "avg_cost": 181.0},
        {"account": SUBS[0], "con_id": ESU4, "quantity": 1, "avg_cost": 274_500.0},
        {"account": SUBS[1], "con_id": SPY_CALL, "quantity": 5, "avg_cost": 1_250.0},
        {"account": SUBS[2], "con_id": EURUSD, "quantity": 20_000, "avg_cost": 1.0835},
        {"account": SUBS[2], "con_id": MSFT, "quantity": -15, "avg_cost": 452.5},
    ],
    "executions": [
        # an FA allocation of 100 AAPL: 60 + 40, the second commission arrives late
        {"exec_id": "0000e0d5.66a0b2c1.01.01", "account": SUBS[0], "con_id": AAPL,
         "side": "BOT", "shares": 60, "price": 181.0, "time": "2024-07-10T13:31:02Z",
         "order_id": 11, "perm_id": 1_900_000_011, "commission": 0.6},
        {"exec_id": "0000e0d5.66a0b2c2.01.01", "account": SUBS[1], "con_id": AAPL,
         "side": "BOT", "shares": 40, "price": 181.0, "time": "2024-07-10T13:31:02Z",
         "order_id": 11, "perm_id": 1_900_000_011, "commission": 0.4, "commission_delay": 0.5},
        # a short sale whose price IB corrected: .01 is replaced by .02
        {"exec_id": "0000e0d5.66a0b2c3.01.01", "account": SUBS[2], "con_id": MSFT,
         "side": "SLD", "shares": 15, "price": 452.0, "time": "2024-07-10T14:02:40Z",
         "order_id": 12, "perm_id": 1_900_000_012, "commission": 1.0,
         "corrected_by": "0000e0d5.66a0b2c3.01.02"},
        {"exec_id": "0000e0d5.66a0b2c3.01.02", "account": SUBS[2], "con_id": MSFT,
         "side": "SLD", "shares": 15, "price": 452.5, "time": "2024-07-10T14:02:40Z",
         "order_id": 12, "perm_id": 1_900_000_012, "commission": 1.0},
    ],
    "open_orders": [
        {"order_id": 13, "perm_id": 1_900_000_013, "account": SUBS[0], "con_id": ESU4,
         "action": "SELL", "quantity": 1, "order_type": "STP", "aux_price": 5_400.0,
         "tif": "GTC", "order_ref": "ibw-stop"},
        {"order_id": 14, "perm_id": 1_900_000_014, "account": "", "con_id": AAPL,
         "action": "BUY", "quantity": 30, "order_type": "LMT", "limit_price": 170.0,
         "fa_group": "Everyone", "fa_method": "NetLiq", "order_ref": "ibw-fa"},
    ],
    "completed_orders": [
        {"order_id": 11, "perm_id": 1_900_000_011, "account": "", "con_id": AAPL,
         "action": "BUY", "quantity": 100, "order_type": "MKT", "status": "Filled",
         "filled": 100, "avg_fill_price": 181.0, "fa_group": "Everyone", "fa_method": "NetLiq",
         "completed_time": "20240710 09:31:02 America/New_York"},
        {"order_id": 10, "perm_id": 1_900_000_010, "account": SUBS[1], "con_id": MSFT,
         "action": "SELL", "quantity": 5, "order_type": "LMT", "limit_price": 470.0,
         "status": "Cancelled", "completed_time": "20240710 09:40:00 America/New_York"},
    ],
    "fa": {
        "groups": [
            {"name": "Everyone", "method": "NetLiq", "accounts": list(SUBS)},
            {"name": "Pair", "method": "Percent", "accounts": [SUBS[0], SUBS[1]],
             "amounts": [70.0, 30.0]},
        ],
        "profiles": [
            {"name": "Tilted", "type": 1, "allocations": {SUBS[0]: 50.0, SUBS[1]: 30.0,
                                                           SUBS[2]: 20.0}},
        ],
        "aliases": {SUBS[0]: "Growth", SUBS[1]: "Income", SUBS[2]: "Hedge"},
    },
}  # fmt: skip

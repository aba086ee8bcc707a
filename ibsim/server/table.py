"""The table from message id to the handler that answers it: every request the gateway serves,
in one place. A message id missing here is answered with an unknown-message error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ibsim.handlers import (
    account,
    fa,
    historical,
    option_analytics,
    orders,
    portfolio,
    realtime_bars,
    reference,
    streaming,
    trades,
)
from ibsim.handlers.client import Client
from ibsim.handlers.fields import FieldReader

Handler = Callable[[Client, FieldReader], Awaitable[None] | None]

HANDLERS: dict[int, Handler] = {
    1: streaming.req_mkt_data,
    2: streaming.cancel_mkt_data,
    3: orders.place_order,
    4: orders.cancel_order,
    5: trades.open_orders,
    6: portfolio.account_updates,
    7: trades.executions,
    8: account.next_ids,
    9: reference.contract_details,
    15: account.acknowledged,  # reqAutoOpenOrders
    16: trades.open_orders,
    17: account.managed_accounts,
    18: fa.request_fa,
    19: fa.replace_fa,
    20: historical.historical_data,
    25: historical.cancel_historical_data,
    49: account.current_time,
    50: realtime_bars.req_real_time_bars,
    51: realtime_bars.cancel_real_time_bars,
    54: option_analytics.calculate_implied_volatility,
    55: option_analytics.calculate_option_price,
    56: option_analytics.cancel_calculation,
    57: option_analytics.cancel_calculation,
    58: orders.global_cancel,
    59: streaming.req_market_data_type,
    61: portfolio.positions,
    62: portfolio.account_summary,
    63: portfolio.cancel_account_summary,
    64: portfolio.cancel_positions,
    74: portfolio.positions_multi,
    75: account.acknowledged,  # cancelPositionsMulti
    76: portfolio.account_updates_multi,
    77: portfolio.cancel_account_updates_multi,
    78: reference.option_parameters,
    80: portfolio.family_codes,
    81: reference.matching_symbols,
    87: historical.head_timestamp,
    90: historical.cancel_head_timestamp,
    91: reference.market_rule,
    92: portfolio.pnl,
    93: portfolio.cancel_pnl,
    94: portfolio.pnl_single,
    95: portfolio.cancel_pnl_single,
    97: streaming.req_tick_by_tick,
    98: streaming.cancel_tick_by_tick,
    99: trades.completed_orders,
}

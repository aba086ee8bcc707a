"""The accounts behind the gateway: the Book (cash, positions, executions, orders, the FA
configuration) and its valuation at the gateway's now."""

"""The client side of Interactive Brokers: connections through ib_async and IB's rules as code.

Owns: connection settings and errors, pacing, the request planner, durations, expected
sessions, the error catalogue, contract helpers. May import: ib_async, exchange-calendars (for
sessions) and the standard library; never Dagster, the warehouse or ibsim.
"""

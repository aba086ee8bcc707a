"""The companion live service: tick and 5-second bar streams, and the order manager.

May import: ibkr and warehouse; never assets, pipelines or ibsim.
"""

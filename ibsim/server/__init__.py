"""The wire side of the gateway: the TCP server and its thread, framing, one client connection,
the table from message id to handler, and the faults that act on connected clients."""

from ibsim.server.gateway import Gateway, GatewayThread

__all__ = ["Gateway", "GatewayThread"]

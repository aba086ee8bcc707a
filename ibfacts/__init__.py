"""Interactive Brokers' facts, written once for the client and the gateway; stdlib only."""

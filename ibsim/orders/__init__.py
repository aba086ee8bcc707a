"""The order engine: orders placed through the API, worked against the synthetic market, with
IB's states, fills, allocations and texts; it reports through the `OrderNews` it owns."""

"""The market the gateway simulates: instruments and their catalog, trading calendars,
synthetic prices, quotes and bars, IB's request rules, pacing and error texts."""

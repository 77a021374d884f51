"""Side effects: the simulated venue, the market-data feed, and Temporal client calls."""

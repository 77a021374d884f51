"""The rig's simulated exchange: its fill model (model.py, pure), the exchange an account owns and
runs arrivals and the cycle's matching on (exchange.py), and the order's local activities for
what an order asks of it directly — a replacement's arrival, a cancel, a replace's pre-check
(activities.py)."""

"""Interactive Brokers behind the rig's orders, on ib_async.

codes.py       IB order statuses and error codes → what the rig does (data)
translator.py  IB callbacks → ExecutionEvents keyed by intent id (pure bookkeeping)
gateway.py     the long-lived connection: taps, submit / cancel / modify / status / executions,
               identity checks, reconnect, reconciliation of orders and positions, outbox → sinks
contracts.py   US stocks qualified once (conId, primary exchange, market rule) and passive tick rounding
positions.py   IB's positions against the accounts' books (a divergence is confirmed, then reported)
store.py       the gateway's state: SQLite, incremental, fsync'd, off the event loop
delivery.py    where events go (order workflows, accounts) and where the books are read (Temporal)
activities.py  ibkr_submit / ibkr_cancel / ibkr_cancel_confirmed / ibkr_modify / ibkr_order_status /
               ibkr_executions_since
models.py      what crosses the boundary (IbkrOrder, CancelOutcome, LateFill, BrokerDivergence …),
               activity and signal names, the orderRef namespace, IbkrSettings (IB_* / RIG_IBKR_* env);
               imports only pydantic and domain.execution, so workflows may import it
service.py     the process: run() / main() — `python -m venues.ibkr` (__main__.py)

The fake TWS, the replay harness and the live paper check are test kits: testkit/ibkr/.
"""

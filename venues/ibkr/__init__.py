"""Interactive Brokers behind the rig's orders, on ib_async.

codes.py       IB order statuses and error codes → what the rig does (data)
translator.py  IB callbacks → ExecutionEvents keyed by intent id (pure bookkeeping)
gateway.py     the long-lived connection: taps, submit/cancel/status/executions, reconnect,
               reconciliation, market-data registry, outbox → EventSink
activities.py  ibkr_submit / ibkr_cancel / ibkr_order_status / ibkr_executions_since
models.py      IbkrOrder (the activity input), activity names, IbkrSettings (IB_* / RIG_IBKR_* env);
               imports only pydantic, so workflows may import it
state.py       the gateway's state file
fake.py        a fake TWS behind ib_async's Client/Wrapper (tests)
replay.py      scenario files of TWS callbacks → the gateway; the contract-suite harness
paper_check.py the live paper-account round trip (make test-ibkr-live)
service.py     the process: run() / main() — `python -m venues.ibkr` (__main__.py)
"""

"""Gauges of the book as the server's visibility sees it, for the rig dashboard: open orders by
state, de-risk orders by kind, accounts by risk mode. Counted with the typed search attributes
every RIG_VISIBILITY_METRICS_SECONDS (unset or 0: off) and exported on the worker's Prometheus
endpoint. Every replica reports the same numbers: dashboards take `max` across instances.

What only workflow code can count (LOST orders, de-risk intents as issued, a cycle's lag behind
its schedule) is not here: see README "Metrics"."""

from __future__ import annotations

import asyncio
import contextlib
import os

from temporalio.client import Client
from temporalio.common import MetricMeter

from domain.enums import IntentKind, OrderState, RiskMode
from protocol.contract import ORDER_WORKFLOW, RISK_WORKFLOW

OPEN_STATES = (OrderState.ACCEPTED, OrderState.WORKING, OrderState.PARTIAL_FILL)
DERISK_KINDS = (IntentKind.SOFT_DERISK, IntentKind.HARD_DERISK)


def interval() -> float:
    value = os.environ.get("RIG_VISIBILITY_METRICS_SECONDS", "").strip()
    return float(value) if value else 0.0


def queries() -> dict[tuple[str, str, str], str]:
    """(metric, label, value) → visibility query."""
    running = 'ExecutionStatus="Running"'
    found: dict[tuple[str, str, str], str] = {}
    for state in OPEN_STATES:
        found[("rig_orders_open", "state", state.value)] = f'WorkflowType="{ORDER_WORKFLOW}" AND {running} AND OrderState="{state.value}"'
    for kind in DERISK_KINDS:  # every de-risk order the server still keeps (retention), open or closed
        found[("rig_derisk_orders", "kind", kind.value)] = f'WorkflowType="{ORDER_WORKFLOW}" AND IntentKind="{kind.value}"'
    for mode in RiskMode:
        found[("rig_accounts_by_mode", "mode", mode.value)] = f'WorkflowType="{RISK_WORKFLOW}" AND {running} AND RiskMode="{mode.value}"'
    return found


DESCRIPTIONS = {
    "rig_orders_open": "open orders by state (visibility count)",
    "rig_derisk_orders": "de-risk orders by kind within retention (visibility count)",
    "rig_accounts_by_mode": "running accounts by risk mode (visibility count)",
}


async def export(client: Client, meter: MetricMeter, every: float) -> None:
    """Count and set every gauge each `every` seconds, for as long as the worker runs."""
    gauges = {name: meter.create_gauge(name, description) for name, description in DESCRIPTIONS.items()}
    while True:
        for (name, label, value), query in queries().items():
            with contextlib.suppress(Exception):  # a count that fails keeps its last value; the next round retries
                counted = await client.count_workflows(query)
                gauges[name].set(counted.count, {label: value})
        await asyncio.sleep(every)

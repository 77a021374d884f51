"""The rig's own metrics, recorded from workflow code through the replay-safe metric meter."""

from __future__ import annotations

from temporalio import workflow


def count(name: str, description: str, **labels: str) -> None:
    workflow.metric_meter().create_counter(name, description).add(1, labels)


def order_finished(state: str, reason: str | None) -> None:
    count("rig_orders_terminal", "orders that reached a terminal state", state=state, reason=reason or "")
    if state == "REJECTED":
        count("rig_order_rejections", "orders rejected, by reason code", reason=reason or "")


def fill_applied(kind: str) -> None:
    count("rig_fills", "fills applied to orders", kind=kind)


def mode_changed(previous: str, mode: str) -> None:
    count("rig_mode_transitions", "risk mode transitions", previous=previous, mode=mode)


def decision_made(mode: str, reason: str) -> None:
    count("rig_decisions", "risk decisions", mode=mode, reason=reason)

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


def derisk_intent(kind: str, mode: str) -> None:
    count("rig_derisk_intents", "de-risk intents the risk cycle issued", kind=kind, mode=mode)


def order_lost(cause: str) -> None:
    """`cause` cut at its first ':' or ';' (the fixed part a code path writes), so the label's values
    stay a small set however an order went away."""
    count("rig_orders_lost", "orders recorded LOST by their account", cause=cause.split(";")[0].split(":")[0].strip()[:60])


def cycle_lag(milliseconds: int) -> None:
    """How late a cycle ran after its cycle time (a live account's timer delayed by a busy worker)."""
    workflow.metric_meter().create_histogram("rig_cycle_lag", "how late a risk cycle ran after its cycle time", unit="ms").record(
        max(0, milliseconds)
    )

"""What a recorded history covers, read from the history itself (never from its file name).

- the workflow type and id: from its first event (WorkflowExecutionStarted);
- an order's path: from the OrderSnapshot its WorkflowExecutionCompleted returned — FILLED; passed
  through PARTIAL_FILL (a fill left it partly filled); CANCELED by the desk (USER); replaced
  (REPLACED); REJECTED at pre-trade (any reason but the venue's) or by the venue (VENUE_REJECT);
  expired at the close (EXPIRED_DAY); the updates and signals it took, by name (the desk's cancel
  and replace, the rig's rig_cancel, rig_replace, venue_executions, arrival; a broker gateway's
  venue_event signal); terminated from outside; reset (its run starts with a RESET_WORKFLOW task
  failure); continued as new (a long life), and the run it carried into;
- an account run's place in its continue-as-new chain: the start (no previous run, continued as
  new), the middle (a previous run, continued as new), the end (a previous run, completed); the
  updates it accepted, by name (WorkflowExecutionUpdateAccepted); a named market in its input, and
  that market's outage (a decision in its result skipped a "MARKET_DATA:" line); a trading
  calendar's daily roll (a `daily_roll` local-activity marker); a firm in its input (once
  RiskInput has `firm`); an order it recorded LOST in its result;
- a scenario: a completed ScenarioWorkflow;
- a firm run: the updates it accepted, by name; continued as new, and the run it carried into.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import WorkflowHistory

from activities.calendar import daily_roll
from protocol.contract import (
    FIRM_WORKFLOW,
    ORDER_WORKFLOW,
    RISK_WORKFLOW,
    SCENARIO_WORKFLOW,
    SIGNAL_VENUE_EVENT,
    UPDATE_ARRIVAL,
    UPDATE_CANCEL,
    UPDATE_FIRM_HALT,
    UPDATE_FIRM_RESUME,
    UPDATE_INJECT_EXPOSURE,
    UPDATE_PRETRADE,
    UPDATE_REPLACE,
    UPDATE_REPLACE_CHECK,
    UPDATE_REPORT_USAGE,
    UPDATE_RIG_CANCEL,
    UPDATE_RIG_REPLACE,
    UPDATE_SET_RULES,
    UPDATE_SET_SESSION,
    UPDATE_SET_TRADING_STATE,
    UPDATE_VENUE_EXECUTIONS,
)
from protocol.messages import RiskInput

ORDER_UPDATES = (UPDATE_CANCEL, UPDATE_REPLACE, UPDATE_RIG_CANCEL, UPDATE_RIG_REPLACE, UPDATE_VENUE_EXECUTIONS, UPDATE_ARRIVAL)
ACCOUNT_UPDATES = (UPDATE_PRETRADE, UPDATE_REPLACE_CHECK, UPDATE_INJECT_EXPOSURE, UPDATE_SET_SESSION, UPDATE_SET_RULES, UPDATE_SET_TRADING_STATE)
FIRM_UPDATES = (UPDATE_REPORT_USAGE, UPDATE_FIRM_HALT, UPDATE_FIRM_RESUME)
ORDER_SIGNALS = (SIGNAL_VENUE_EVENT,)
# An account opened with a firm: required once RiskInput has the field (the firm on the account).
FIRM_MEMBERS = "firm" in RiskInput.model_fields
DAILY_ROLL = daily_roll.__name__  # its activity type (@activity.defn gives it no other name)
# The skipped line a cycle's decision carries while its named market cannot be read (workflows/account/cycle.py).
MARKET_OUTAGE = "MARKET_DATA:"

REQUIRED = frozenset(
    {
        "order:filled",
        "order:partially_filled",
        "order:canceled",
        "order:replaced",
        "order:rejected_pretrade",
        "order:rejected_venue",
        "order:expired_at_close",
        "order:terminated",
        "order:reset",
        "order:continued",
        "order:carried",
        *(f"order:update:{name}" for name in ORDER_UPDATES),
        *(f"order:signal:{name}" for name in ORDER_SIGNALS),
        "account:chain_start",
        "account:chain_middle",
        "account:chain_end",
        "account:market",
        "account:market_outage",
        "account:calendar",
        *(["account:firm_member"] if FIRM_MEMBERS else []),
        "account:lost",
        *(f"account:update:{name}" for name in ACCOUNT_UPDATES),
        "scenario:completed",
        *(f"firm:update:{name}" for name in FIRM_UPDATES),
        "firm:continued",
        "firm:carried",
    }
)


def read(path: Path) -> WorkflowHistory:
    """A history file (`WorkflowHistory.to_json`, or `temporal workflow show --output json`) with
    the workflow id of its first event."""
    text = path.read_text()
    first = json.loads(text)["events"][0]
    workflow_id = first.get("workflowExecutionStartedEventAttributes", {}).get("workflowId", "")
    return WorkflowHistory.from_json(workflow_id, text)


def workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def _result(history: WorkflowHistory) -> dict[str, Any] | None:
    last = history.events[-1]
    if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return None
    payloads = last.workflow_execution_completed_event_attributes.result.payloads
    return json.loads(payloads[0].data) if payloads else None


def _order_paths(result: dict[str, Any]) -> set[str]:
    paths = set()
    state, cancel, reject = result.get("state"), result.get("cancel_reason"), result.get("reject_reason")
    if state == "FILLED":
        paths.add("order:filled")
    quantity, filled = result.get("quantity") or 0, 0
    for fill in result.get("fills") or []:
        filled += fill.get("quantity", 0)
        if 0 < filled < quantity:
            paths.add("order:partially_filled")
    if state == "CANCELED" and cancel == "USER":
        paths.add("order:canceled")
    if cancel == "REPLACED":
        paths.add("order:replaced")
    if cancel == "EXPIRED_DAY":
        paths.add("order:expired_at_close")
    if state == "REJECTED":
        paths.add("order:rejected_venue" if reject == "VENUE_REJECT" else "order:rejected_pretrade")
    return paths


def _messages(history: WorkflowHistory, prefix: str) -> set[str]:
    """The updates the run accepted and the signals it took, by name."""
    paths = set()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            paths.add(f"{prefix}:update:{event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name}")
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            paths.add(f"{prefix}:signal:{event.workflow_execution_signaled_event_attributes.signal_name}")
    return paths


def _input(history: WorkflowHistory) -> Any:
    payloads = history.events[0].workflow_execution_started_event_attributes.input.payloads
    return json.loads(payloads[0].data) if payloads else None


def _order_run_paths(history: WorkflowHistory) -> set[str]:
    started = history.events[0].workflow_execution_started_event_attributes
    last = history.events[-1].event_type
    paths = _messages(history, "order")
    if last == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
        paths.add("order:terminated")
    if last == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        paths.add("order:continued")
    if started.continued_execution_run_id and last == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        paths.add("order:carried")
    if any(
        e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        and e.workflow_task_failed_event_attributes.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
        for e in history.events
    ):
        paths.add("order:reset")
    result = _result(history)
    return paths | (_order_paths(result) if result else set())


def _account_paths(history: WorkflowHistory) -> set[str]:
    started = history.events[0].workflow_execution_started_event_attributes
    last = history.events[-1].event_type
    continued = bool(started.continued_execution_run_id)
    paths = _messages(history, "account")
    if last == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        paths.add("account:chain_middle" if continued else "account:chain_start")
    elif last == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED and continued:
        paths.add("account:chain_end")
    given = _input(history)
    if isinstance(given, dict) and given.get("market"):
        paths.add("account:market")
    if isinstance(given, dict) and given.get("firm"):
        paths.add("account:firm_member")
    if DAILY_ROLL in _local_activities(history):
        paths.add("account:calendar")
    result = _result(history)
    if result and any(o.get("lost_cause") for o in (result.get("outcomes") or {}).values()):
        paths.add("account:lost")
    if result and any(line.startswith(MARKET_OUTAGE) for d in result.get("decisions") or [] for line in d.get("skipped") or []):
        paths.add("account:market_outage")
    return paths


def _local_activities(history: WorkflowHistory) -> set[str]:
    """The local activities the run completed, by type, from their markers (the SDK's marker
    carries the activity's type in its `data` detail)."""
    types = set()
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            continue
        data = event.marker_recorded_event_attributes.details.get("data")
        if data is not None and data.payloads:
            types.add(json.loads(data.payloads[0].data).get("activity_type", ""))
    return types


def paths_of(history: WorkflowHistory) -> set[str]:
    kind = workflow_type(history)
    if kind == ORDER_WORKFLOW:
        return _order_run_paths(history)
    if kind == RISK_WORKFLOW:
        return _account_paths(history)
    if kind == SCENARIO_WORKFLOW and history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return {"scenario:completed"}
    if kind == FIRM_WORKFLOW:
        return _firm_paths(history)
    return set()


def _firm_paths(history: WorkflowHistory) -> set[str]:
    paths = _messages(history, "firm")
    if history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        paths.add("firm:continued")
    if history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id:
        paths.add("firm:carried")
    return paths

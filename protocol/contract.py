"""The Temporal contract in one place: task queue, workflow types and ids, message names,
search attributes. The CLI, the worker, the tests and docker-compose all read these."""

from __future__ import annotations

import re

from temporalio.common import SearchAttributeKey, VersioningBehavior

DEFAULT_TASK_QUEUE = "risk-rig"
DEFAULT_NAMESPACE = "default"

ORDER_WORKFLOW = "OrderWorkflow"
RISK_WORKFLOW = "RiskWorkflow"
SCENARIO_WORKFLOW = "ScenarioWorkflow"
FIRM_WORKFLOW = "FirmWorkflow"

# Worker Versioning, per workflow type, applied by versioned workers (worker/versioned_workflows.py;
# README "Shipping a release"):
# - an order finishes on the build that started it: its code never changes under it, so an order
#   needs no patch, and a release never waits for the book's orders to close;
# - an account lives for weeks and moves to the current build at its next workflow task: every
#   change to its code is guarded by `workflow.patched` (tests/test_replay.py keeps old histories);
# - a scenario runs one bounded, time-skipped day whose digest judges one build: pinned, so a
#   report never mixes two builds' code (its account child starts on the scenario's build too).
ORDER_VERSIONING = VersioningBehavior.PINNED
RISK_VERSIONING = VersioningBehavior.AUTO_UPGRADE
SCENARIO_VERSIONING = VersioningBehavior.PINNED
FIRM_VERSIONING = VersioningBehavior.AUTO_UPGRADE  # long-lived like an account

RISK_ID_PREFIX = "risk-"
SCENARIO_ID_PREFIX = "scenario-"
FIRM_ID_PREFIX = "firm-"


def risk_workflow_id(account: str) -> str:
    return f"{RISK_ID_PREFIX}{account}"


# A run id as the server makes them (a UUID): an order's requests to its account carry it.
_RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def pretrade_update_id(intent_id: str, order_run_id: str) -> str:
    """The update id of an order's pre-trade request: the intent @ the order workflow's run (a
    retry of the same run is deduplicated by the server; a reset order's new run is judged again)."""
    return f"{intent_id}@{order_run_id}"


def is_pretrade_update_id(update_id: str, intent_id: str) -> bool:
    """The request names the order it is for and a run of it: what only an order workflow's own
    call makes (the account refuses any other shape, signed or not)."""
    prefix = f"{intent_id}@"
    return update_id.startswith(prefix) and _RUN_ID.fullmatch(update_id[len(prefix) :]) is not None


def firm_workflow_id(firm: str) -> str:
    return f"{FIRM_ID_PREFIX}{firm}"


def account_task_queue(task_queue: str) -> str:
    """Accounts run on a task queue of their own (served by the same worker process, with slots of
    its own): an order's first workflow task waits on its account's pre-trade Update, so a burst
    of orders holding every slot of one queue would otherwise leave the account none to answer."""
    return f"{task_queue}-accounts"


_GENERATION = re.compile(r"^(?P<base>.+)\.R(?P<n>[1-9][0-9]{0,5})$")


def next_replacement_id(intent_id: str) -> str:
    """FIX-style replacement ids `<base>.R<n>`, the generation parsed from the end:
    `x` → `x.R1`, `x.R2` → `x.R3`, `a.Rb.R1` → `a.Rb.R2`."""
    found = _GENERATION.match(intent_id)
    if found is None:
        return f"{intent_id}.R1"
    return f"{found['base']}.R{int(found['n']) + 1}"


# Account (risk workflow) messages.
UPDATE_PRETRADE = "pretrade"  # update id = "<intent id>@<order run id>"; the ledger never reserves an intent twice
UPDATE_REPLACE_CHECK = "replace_check"  # update id = "replace-check:<replacement id>@<order run id>/<activity id>"
SIGNAL_ORDER_REPORT = "order_report"
ACCOUNT_BUSY = "AccountBusy"  # a refusal that means "ask again" (starting, continuing as new), not a verdict
UPDATE_INJECT_EXPOSURE = "inject_exposure"
UPDATE_SET_SESSION = "set_session"
UPDATE_SET_RULES = "set_rules"
UPDATE_SET_TRADING_STATE = "set_trading_state"
# Order messages: what users send, and the rig's own (internal: the risk cycle and the venue).
UPDATE_CANCEL = "cancel"
UPDATE_REPLACE = "replace"
UPDATE_RIG_CANCEL = "rig_cancel"
UPDATE_RIG_REPLACE = "rig_replace"
UPDATE_ARRIVAL = "arrival"  # waits for the order's arrival at the venue; answers its report
UPDATE_VENUE_EXECUTIONS = "venue_executions"  # the simulated venue's events for this order
SIGNAL_VENUE_EVENT = "venue_event"  # a broker gateway's asynchronous event
# Firm (workflows/firm.py) messages: the operators' kill switch, and the accounts' usage reports (internal).
UPDATE_FIRM_HALT = "firm_halt"
UPDATE_FIRM_RESUME = "firm_resume"
UPDATE_REPORT_USAGE = "report_usage"  # an account's cycle → its firm; answers the account's grant
FIRM_UNCHANGED = "FirmUnchanged"  # a halt of a HALTED firm, a resume of an ACTIVE one: refused, nothing recorded
QUERY_STATE = "state"
QUERY_EXPOSURE = "exposure"
QUERY_DECISIONS = "decisions"

# Typed search attributes, so the UI can filter OrderState="WORKING".
SA_ORDER_STATE = SearchAttributeKey.for_keyword("OrderState")
SA_SYMBOL = SearchAttributeKey.for_keyword("Symbol")
SA_SIDE = SearchAttributeKey.for_keyword("Side")
SA_BUCKET = SearchAttributeKey.for_keyword("Bucket")
SA_ACCOUNT = SearchAttributeKey.for_keyword("Account")
SA_RISK_MODE = SearchAttributeKey.for_keyword("RiskMode")
SA_INTENT_KIND = SearchAttributeKey.for_keyword("IntentKind")
SA_TRADING_STATE = SearchAttributeKey.for_keyword("TradingState")
SA_VENUE = SearchAttributeKey.for_keyword("Venue")

SEARCH_ATTRIBUTES = (
    SA_ORDER_STATE,
    SA_SYMBOL,
    SA_SIDE,
    SA_BUCKET,
    SA_ACCOUNT,
    SA_RISK_MODE,
    SA_INTENT_KIND,
    SA_TRADING_STATE,
    SA_VENUE,
)

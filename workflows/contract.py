"""The Temporal contract in one place: task queue, workflow types and ids, message names,
search attributes. The CLI, the worker, the tests and docker-compose all read these."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

DEFAULT_TASK_QUEUE = "risk-rig"
DEFAULT_NAMESPACE = "default"

ORDER_WORKFLOW = "OrderWorkflow"
RISK_WORKFLOW = "RiskWorkflow"
SCENARIO_WORKFLOW = "ScenarioWorkflow"

RISK_ID_PREFIX = "risk-"
SCENARIO_ID_PREFIX = "scenario-"


def risk_workflow_id(account: str) -> str:
    return f"{RISK_ID_PREFIX}{account}"


def replacement_intent_id(intent_id: str, generation: int) -> str:
    return f"{intent_id}.R{generation}"


# Signals, updates and queries.
SIGNAL_PRETRADE_REQUEST = "pretrade_request"
SIGNAL_PRETRADE_VERDICT = "pretrade_verdict"
SIGNAL_ORDER_REPORT = "order_report"
SIGNAL_VENUE_TICK = "venue_tick"
UPDATE_CANCEL = "cancel"
UPDATE_REPLACE = "replace"
UPDATE_INJECT_EXPOSURE = "inject_exposure"
UPDATE_SET_SESSION = "set_session"
QUERY_STATE = "state"
QUERY_FILLS = "fills"
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

SEARCH_ATTRIBUTES = (SA_ORDER_STATE, SA_SYMBOL, SA_SIDE, SA_BUCKET, SA_ACCOUNT, SA_RISK_MODE, SA_INTENT_KIND)

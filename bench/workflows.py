"""The bench's own workflows (a module of its own: workflow modules are re-imported in the
sandbox, so nothing here may pull in the server launcher or the bench plumbing).

- NoopWorkflow: the baseline — one workflow task, no activities, no signals.
- CycleTimers: nothing but `n` sleeps of a cycle: the floor of a day that wakes every cycle.
- FloorAccount: an account whose pre-trade update approves at once (no book, no gate): what a
  serialized account costs on this engine when its own work is nil.
- FloorOrder: an order that only asks its account (the pre-trade update from a local activity,
  update id = intent id) and, with `report`, sends the report signal too: the round trips of
  the fill-at-arrival path without the rig's work. Pointed at a real account (`pretrade`
  against RiskWorkflow) it measures the account's gate alone.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

FLOOR_UPDATE = "pretrade"
FLOOR_SIGNAL = "order_report"
UPDATES_PER_RUN = 1_500  # as the rig's account: the server allows 2,000 per run


class FloorCall(BaseModel):
    account_id: str  # the account's workflow id
    intent_id: str
    raw_intent: dict
    report: bool = False
    real: bool = False  # the rig's RiskWorkflow (its pre-trade request and report types)


class FloorReport(BaseModel):
    call: FloorCall
    reply: dict


@workflow.defn(name="NoopWorkflow")
class NoopWorkflow:
    @workflow.run
    async def run(self, _: dict) -> None:
        return None


@workflow.defn(name="CycleTimers")
class CycleTimers:
    @workflow.run
    async def run(self, cycles: list[int]) -> None:
        count, seconds = cycles
        for _ in range(count):
            await workflow.sleep(timedelta(seconds=seconds))


@workflow.defn(name="FloorAccount")
class FloorAccount:
    def __init__(self) -> None:
        self._updates = 0
        self._reports = 0
        self._continuing = False

    @workflow.run
    async def run(self, _: dict) -> None:
        await workflow.wait_condition(lambda: self._updates >= UPDATES_PER_RUN or workflow.info().is_continue_as_new_suggested())
        self._continuing = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new({})

    @workflow.update(name=FLOOR_UPDATE)
    def pretrade(self, request: dict) -> dict:
        self._updates += 1
        return {"approved": True, "intent_id": request.get("intent_id")}

    @pretrade.validator
    def _validate(self, request: dict) -> None:
        if self._continuing:
            raise ValueError("continuing as new: retry")

    @workflow.signal(name=FLOOR_SIGNAL)
    def report(self, _: dict) -> None:
        self._reports += 1


@workflow.defn(name="FloorOrder")
class FloorOrder:
    @workflow.run
    async def run(self, call: FloorCall) -> dict:
        options = workflow.LocalActivityConfig(
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(minutes=3),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5)),
        )
        reply = await workflow.execute_local_activity("floor_pretrade", call, result_type=dict, **options)
        if call.report:
            await workflow.execute_local_activity("floor_report", FloorReport(call=call, reply=reply), **options)
        return reply

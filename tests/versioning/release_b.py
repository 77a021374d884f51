"""Build B of the versioning drill: the rig's order and account workflows with a real change each,
registered under the same workflow type names. Test-only: the shipped code is build A.

- Order (PINNED): B's order records the release it runs on in its memo at its first task. That
  adds a command to the first task, so B's code cannot replay an order started on A — which is
  why orders are pinned: they never meet another build's code.
- Account (AUTO_UPGRADE): B's account records the release in its memo after each cycle, guarded by
  `workflow.patched`: an account started on A replays A's cycles on B without the new command
  (patched() is False there) and takes the new path from its first task on B.
- UnguardedAccountB is the same change without the guard: replaying an A history with it fails
  (the drill checks that, so the guard is shown to matter).
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():  # as the rig's workflow modules do
    from protocol import contract as c
    from protocol.messages import DecisionRecord, RiskResult
    from protocol.order_record import OrderSnapshot
from workflows.order import OrderWorkflow
from workflows.risk import RiskWorkflow

RELEASE_MEMO = "rig_release"
RELEASE = "B"
PATCH_ID = "release-b-memo"


@workflow.defn(name=c.ORDER_WORKFLOW, sandboxed=False, versioning_behavior=c.ORDER_VERSIONING)
class OrderWorkflowB(OrderWorkflow):
    @workflow.run
    async def run(self, raw_input: Any) -> OrderSnapshot:
        return await super().run(raw_input)

    async def _first_task(self, raw_input: Any) -> None:
        workflow.upsert_memo({RELEASE_MEMO: RELEASE})
        await super()._first_task(raw_input)


@workflow.defn(name=c.RISK_WORKFLOW, versioning_behavior=c.RISK_VERSIONING)
class RiskWorkflowB(RiskWorkflow):
    @workflow.run
    async def run(self, raw: Any) -> RiskResult:
        return await super().run(raw)

    def _details(self, record: DecisionRecord) -> str:  # called after each cycle
        if workflow.patched(PATCH_ID) and not self._release_recorded:
            workflow.upsert_memo({RELEASE_MEMO: RELEASE})
            self._release_recorded = True
        return super()._details(record)

    _release_recorded = False


@workflow.defn(name=c.RISK_WORKFLOW, versioning_behavior=c.RISK_VERSIONING)
class UnguardedAccountB(RiskWorkflow):
    @workflow.run
    async def run(self, raw: Any) -> RiskResult:
        return await super().run(raw)

    def _details(self, record: DecisionRecord) -> str:
        if not self._release_recorded:
            workflow.upsert_memo({RELEASE_MEMO: RELEASE})
            self._release_recorded = True
        return super()._details(record)

    _release_recorded = False


B_WORKFLOWS = [OrderWorkflowB, RiskWorkflowB]

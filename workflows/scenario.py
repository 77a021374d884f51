"""ScenarioWorkflow: run one scenario (by name or inline spec) on a fresh account and return a
pass/fail report. The account's RiskWorkflow runs as a child, so a time-skipping start of the
scenario skips the whole simulated day."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.scenarios import ScenarioPlan, load_scenario
    from scenarios.evaluate import evaluate
    from scenarios.spec import ScenarioReport
    from workflows import contract as c
    from workflows.messages import RiskInput, RiskResult
    from workflows.risk import RiskWorkflow


@workflow.defn(name=c.SCENARIO_WORKFLOW)
class ScenarioWorkflow:
    @workflow.run
    async def run(self, scenario: Any) -> ScenarioReport:
        plan: ScenarioPlan = await workflow.execute_local_activity(
            load_scenario, scenario, start_to_close_timeout=timedelta(seconds=30)
        )
        spec = plan.spec
        account = f"{spec.name}-{workflow.uuid4().hex[:8]}"
        workflow.set_current_details(f"running scenario **{spec.name}** on account `{account}`: {spec.description}")
        result: RiskResult = await workflow.execute_child_workflow(
            RiskWorkflow.run,
            RiskInput(
                account=account, config=plan.config, seed=spec.seed, equity=spec.equity, start_exchange_time=spec.start,
                exchange_date=spec.date, stop_at=spec.stop, timeline=spec.events,
            ),
            id=c.risk_workflow_id(account),
            static_summary=f"Risk entity for scenario {spec.name}",
        )
        report = evaluate(spec, result)
        verdict = "PASSED" if report.passed else f"FAILED ({len(report.failures)} failures)"
        workflow.set_current_details(f"scenario **{spec.name}** {verdict} on `{account}`")
        return report

"""ScenarioWorkflow: run one scenario (by name or inline spec) on a fresh test account and
return a pass/fail report. The account's RiskWorkflow runs as a child, so a time-skipping start
of the scenario skips the whole simulated day (a pending child holds the parent's own clock:
the deadline below runs in real time while the day is skipped)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.scenarios import load_scenario
    from protocol import contract as c
    from protocol.messages import RiskInput, RiskResult, RiskView
    from protocol.scenario_plan import ScenarioPlan
    from scenarios.evaluate import evaluate
    from scenarios.spec import ScenarioReport, ScenarioSpec
    from workflows.risk import RiskWorkflow

# A scenario that takes longer than its own simulated span plus this has hung somewhere.
DEADLINE_MARGIN = timedelta(minutes=10)


def span(spec: ScenarioSpec) -> timedelta:
    def at(day: str | None, text: str) -> datetime:
        return datetime.strptime(f"{day or '2000-01-01'} {text if text.count(':') == 2 else f'{text}:00'}", "%Y-%m-%d %H:%M:%S")

    return max(timedelta(0), at(spec.stop_date or spec.date, spec.stop) - at(spec.date, spec.start))


@workflow.defn(name=c.SCENARIO_WORKFLOW)
class ScenarioWorkflow:
    @workflow.run
    async def run(self, scenario: Any) -> ScenarioReport:
        plan: ScenarioPlan = await workflow.execute_local_activity(
            load_scenario, scenario, start_to_close_timeout=timedelta(seconds=30), retry_policy=RetryPolicy(maximum_attempts=3)
        )
        spec = plan.spec
        account = f"{spec.name}-{workflow.uuid4().hex[:8]}"
        workflow.set_current_details(f"running scenario **{spec.name}** on account `{account}`: {spec.description}")
        child = await workflow.start_child_workflow(
            RiskWorkflow.run,
            RiskInput(
                account=account,
                config=plan.config,
                seed=spec.seed,
                equity=spec.equity,
                synthetic=True,
                start_exchange_time=spec.start,
                exchange_date=spec.date,
                stop_at=spec.stop,
                stop_date=spec.stop_date,
                timeline=plan.timeline or spec.events,  # a plan from before `timeline` carried them in its spec
                market=plan.market,
                bod=plan.bod,
            ),
            id=c.risk_workflow_id(account),
            task_queue=c.account_task_queue(workflow.info().task_queue),
            static_summary=f"Risk entity for scenario {spec.name}",
        )
        deadline = span(spec) + DEADLINE_MARGIN
        try:
            result: RiskResult = await asyncio.wait_for(asyncio.shield(child), timeout=deadline.total_seconds())
        except TimeoutError:
            return await self._timed_out(spec, account, deadline)
        report = evaluate(spec, result)
        verdict = "PASSED" if report.passed else f"FAILED ({len(report.failures)} failures)"
        workflow.set_current_details(f"scenario **{spec.name}** {verdict} on `{account}` — {report.digest}")
        return report

    async def _timed_out(self, spec: ScenarioSpec, account: str, deadline: timedelta) -> ScenarioReport:
        """Where it stood when the deadline passed: the account's cycle, time, mode and orders."""
        try:
            view: RiskView = await workflow.execute_activity(
                "account_view",
                account,
                result_type=RiskView,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
            stood = (
                f"cycle {view.cycle} at {view.exchange_time} ({view.regime.value}), mode {view.mode.value}, "
                f"{len(view.open_orders)} open orders: {[o.intent_id for o in view.open_orders][:10]}"
            )
        except ActivityError as err:
            stood = f"the account could not be read: {err.cause or err}"
        failure = f"timed out after {deadline} without finishing; it stood at {stood}"
        workflow.set_current_details(f"scenario **{spec.name}** TIMED OUT on `{account}`: {stood}")
        return ScenarioReport(
            name=spec.name,
            account=account,
            passed=False,
            failures=[failure],
            checks=sum(exp.comparisons() for exp in spec.expect),
            modes=[],
            intents=[],
            orders=[],
            final_gross_pct=None,
            order_workflow_ids=[],
            timed_out=True,
        )

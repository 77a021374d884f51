"""Record histories from real runs for the replay tests: `python -m tests.histories.record`.

Re-record after an intended change to workflow code; the replay test then pins the new shape.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import TimeSkippingConfig, WorkflowEnvironment

from config.load import load_config
from scenarios.spec import ScenarioReport
from tests.accounts import intent, with_fills
from worker.main import build_worker
from worker.server import TIME_SKIPPING_ARGS, temporal_binary
from protocol.contract import ORDER_WORKFLOW, RISK_WORKFLOW, SCENARIO_WORKFLOW, SEARCH_ATTRIBUTES, risk_workflow_id
from protocol.messages import RiskInput

HERE = Path(__file__).resolve().parent
QUEUE = "record"


async def save(handle: WorkflowHandle, kind: str) -> None:
    """File name `<kind>__<workflow id>.json`: replay needs the real workflow id (the order
    workflow checks its intent id against it)."""
    history = await handle.fetch_history()
    run = f"__{handle.run_id}" if kind.startswith("risk") else ""
    (HERE / f"{kind}__{handle.id}{run}.json").write_text(history.to_json())
    print(f"recorded {kind} {handle.id}: {len(history.events)} events")


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping_v2(
        ts_config=TimeSkippingConfig(max_session_skip_count=1_000_000), data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES, dev_server_existing_path=temporal_binary(), dev_server_extra_args=TIME_SKIPPING_ARGS,
    )
    async with env:
        client: Client = env.client
        async with build_worker(client, QUEUE):
            report = await client.execute_workflow(SCENARIO_WORKFLOW, "full_day", id="rec-scenario-full_day", task_queue=QUEUE, result_type=ScenarioReport)
            await save(client.get_workflow_handle("rec-scenario-full_day"), "scenario")
            # The risk workflow's first run (it continues-as-new every 120 cycles) and its last.
            risk = client.get_workflow_handle(risk_workflow_id(report.account))
            first_run = [e async for e in client.list_workflows(f'WorkflowId="{risk.id}"')]
            for i, run in enumerate(sorted(first_run, key=lambda r: r.start_time)):
                if i in (0, len(first_run) - 1):
                    await save(client.get_workflow_handle(risk.id, run_id=run.run_id), f"risk-run{i}")
            for order_id in report.order_workflow_ids[:2]:
                await save(client.get_workflow_handle(order_id), "order")
            crossing = await client.execute_workflow(SCENARIO_WORKFLOW, "fill_crosses_cancel", id="rec-crossing", task_queue=QUEUE, result_type=ScenarioReport)
            await save(client.get_workflow_handle(crossing.order_workflow_ids[0]), "order")
            # A partially filled, replaced order on a real-time account.
            account = "rec-replace"
            config = with_fills(load_config(), 1, other=0.5, partial_fill_probability=1.0, cancel_cross_probability=0.0)
            with env.with_time_skipping_disabled():
                await client.start_workflow(RISK_WORKFLOW, RiskInput(account=account, config=config, seed=2, start_exchange_time="11:00", synthetic=True),
                                            id=risk_workflow_id(account), task_queue=QUEUE)
            order = await client.start_workflow(ORDER_WORKFLOW, intent(account, "r1", quantity=1000), id=f"{account}-r1", task_queue=QUEUE)
            await asyncio.sleep(2.5)
            await order.execute_update("replace", {"quantity": 1200, "limit_price": 189.0})
            await order.result()
            await save(order, "order")
            await client.get_workflow_handle(risk_workflow_id(account)).terminate("recorded")


if __name__ == "__main__":
    asyncio.run(main())

"""The order workflow as the sandbox would run it: replayed like this, its module must import and
run under the SDK's workflow sandbox, although the worker runs it unsandboxed (for speed). A
module of its own: the sandbox re-imports the module that defines a workflow class."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from protocol.contract import ORDER_WORKFLOW
    from protocol.order_record import OrderSnapshot
from workflows.order import OrderWorkflow  # re-imported inside the sandbox: that is the check


@workflow.defn(name=ORDER_WORKFLOW, sandboxed=True)
class SandboxedOrderWorkflow(OrderWorkflow):
    @workflow.run
    async def run(self, raw_input: Any) -> OrderSnapshot:
        return await super().run(raw_input)

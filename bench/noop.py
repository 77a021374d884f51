"""The baseline workflow: one workflow task, no activities, no signals."""

from temporalio import workflow


@workflow.defn(name="NoopWorkflow")
class NoopWorkflow:
    @workflow.run
    async def run(self, _: dict) -> None:
        return None

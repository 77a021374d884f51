"""What the connected Temporal server allows, asked explicitly (never guessed from error text).

Time skipping (v2, per workflow) has no flag in GetSystemInfo's capabilities nor in the
namespace's (temporalio 1.35 API). It is a dynamic config switch per namespace
(`frontend.WorkflowTimeSkippingEnabled`, default false), so the probe asks the server itself:
start a workflow that carries a TimeSkippingConfig and read back what the server recorded.

- Switched off, the frontend refuses the start with gRPC status UNIMPLEMENTED ("The
  Time-Skipping feature is not enabled for namespace"): nothing is created.
- Switched on, the start succeeds and DescribeWorkflowExecution reports
  `workflow_extended_info.time_skipping_info.effective_config.enabled`.
- A server older than the feature drops the unknown request field: the start succeeds but no
  time_skipping_info comes back.
"""

from __future__ import annotations

import uuid

from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import TimeSkippingConfig, WorkflowExecution, WorkflowType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DeleteWorkflowExecutionRequest,
    DescribeWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

PROBE_PREFIX = "rig-capability-probe-"
PROBE_WORKFLOW_TYPE = "RigTimeSkippingProbe"  # registered by no worker: the probe never runs
# Upper bound on the probe's life should both clean-ups below be refused.
PROBE_EXECUTION_TIMEOUT = Duration(seconds=300)


async def time_skipping_supported(client: Client) -> bool:
    """True when the server lets workflows in `client.namespace` skip time (TimeSkippingConfig).

    Starts a probe workflow `rig-capability-probe-<uuid>` of type `RigTimeSkippingProbe` on a task
    queue of the same name (nobody polls it) with `TimeSkippingConfig(enabled=True)`:
    UNIMPLEMENTED → False (the server's answer when the namespace does not allow it); accepted →
    True only if DescribeWorkflowExecution shows the config in force, else False (a server that
    ignores the field). The probe is then deleted (terminated if deletion is refused). Any other
    RPC error (unreachable, permission denied…) propagates: it answers nothing about time skipping.
    The raw service calls bypass client interceptors, so a TimeSkipper client probes the same way.
    """
    workflow_id = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    service = client.workflow_service
    try:
        started = await service.start_workflow_execution(
            StartWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_id=workflow_id,
                workflow_type=WorkflowType(name=PROBE_WORKFLOW_TYPE),
                task_queue=TaskQueue(name=workflow_id),
                request_id=str(uuid.uuid4()),
                identity=client.identity,
                workflow_execution_timeout=PROBE_EXECUTION_TIMEOUT,
                time_skipping_config=TimeSkippingConfig(enabled=True),
            ),
            retry=True,
        )
    except RPCError as err:
        if err.status == RPCStatusCode.UNIMPLEMENTED:
            return False
        raise
    execution = WorkflowExecution(workflow_id=workflow_id, run_id=started.run_id)
    try:
        described = await service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(namespace=client.namespace, execution=execution), retry=True
        )
        extended = described.workflow_extended_info
        return extended.HasField("time_skipping_info") and extended.time_skipping_info.effective_config.enabled
    finally:
        await _discard(client, execution)


async def _discard(client: Client, execution: WorkflowExecution) -> None:
    """Delete the probe (it then vanishes from the UI); terminate it if deletion is refused."""
    try:
        await client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(namespace=client.namespace, workflow_execution=execution), retry=True
        )
        return
    except RPCError:
        pass
    try:
        await client.workflow_service.terminate_workflow_execution(
            TerminateWorkflowExecutionRequest(
                namespace=client.namespace, workflow_execution=execution, reason="capability probe", identity=client.identity
            ),
            retry=True,
        )
    except RPCError:
        pass  # the execution timeout closes it

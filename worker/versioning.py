"""Worker Versioning: which release a worker is, and what the server says about releases.

A worker started with RIG_BUILD_ID joins the worker deployment RIG_DEPLOYMENT_NAME (default
`risk-rig`) as version `<deployment>.<build id>`, on both of its task queues. Without RIG_BUILD_ID
it is unversioned (development, the tests' session worker). A versioned worker registers each
workflow type with its behaviour (worker/versioned_workflows.py): orders PINNED (an order
finishes on the build that started it), accounts AUTO_UPGRADE (their next task runs on the
current build; changes guarded by `workflow.patched`), scenarios PINNED. The SDK refuses to run a
type without one on a versioned worker.

A release is: start the new build's workers beside the old ones, make it current
(`temporal worker deployment set-current-version`), wait until the old version reports DRAINED
(its pinned orders closed), stop its workers, delete it. The very first version of a deployment
that has none current is made current by the worker itself, so a fresh stack runs with no
manual step (`adopt_first_version`); every later switch is the operator's decision.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from temporalio.api.deployment.v1 import WorkerDeploymentInfo
from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionProto
from temporalio.api.enums.v1 import VersionDrainageStatus, WorkerDeploymentVersionStatus
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import (
    DeleteWorkerDeploymentVersionRequest,
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

DEFAULT_DEPLOYMENT = "risk-rig"
UNVERSIONED = "unversioned"
log = logging.getLogger("rig.versioning")


class VersioningSettingsError(ValueError):
    """RIG_DEPLOYMENT_NAME / RIG_BUILD_ID that the server would refuse."""


def deployment_version() -> WorkerDeploymentVersion | None:
    """This worker's version from RIG_DEPLOYMENT_NAME and RIG_BUILD_ID; None when unversioned."""
    build_id = os.environ.get("RIG_BUILD_ID", "").strip()
    if not build_id:
        return None
    name = os.environ.get("RIG_DEPLOYMENT_NAME", DEFAULT_DEPLOYMENT).strip()
    if not name or "." in name:  # the canonical form `<deployment>.<build id>` splits at the first dot
        raise VersioningSettingsError(f"RIG_DEPLOYMENT_NAME {name!r}: must be non-empty and contain no '.'")
    if len(build_id) > 255 or len(name) > 255:
        raise VersioningSettingsError("RIG_DEPLOYMENT_NAME and RIG_BUILD_ID are at most 255 characters")
    return WorkerDeploymentVersion(deployment_name=name, build_id=build_id)


def deployment_config(version: WorkerDeploymentVersion | None) -> WorkerDeploymentConfig | None:
    # No default behaviour: a workflow type without its own stated behaviour fails on a versioned worker.
    return WorkerDeploymentConfig(version=version, use_worker_versioning=True) if version else None


async def current_build(client: Client, deployment: str) -> str | None:
    """The build id new workflows start on (None: no current version, or no such deployment)."""
    info = await deployment_info(client, deployment)
    if info is None:
        return None
    current = info.routing_config.current_deployment_version
    return current.build_id or None


async def deployment_info(client: Client, deployment: str) -> WorkerDeploymentInfo | None:
    """The deployment's versions and routing (None: no worker of it ever polled this namespace)."""
    try:
        answer = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment), retry=True
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return answer.worker_deployment_info


async def set_current(client: Client, version: WorkerDeploymentVersion) -> None:
    await client.workflow_service.set_worker_deployment_current_version(
        SetWorkerDeploymentCurrentVersionRequest(
            namespace=client.namespace, deployment_name=version.deployment_name, build_id=version.build_id, identity=client.identity
        ),
        retry=True,
    )


async def set_current_when_registered(client: Client, version: WorkerDeploymentVersion, timeout: float = 30.0) -> None:
    """Make `version` current once the server has seen its pollers (before that it is refused)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await set_current(client, version)
            return
        except RPCError as err:
            if asyncio.get_running_loop().time() > deadline or err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise
        await asyncio.sleep(0.2)


async def adopt_first_version(client: Client, version: WorkerDeploymentVersion, timeout: float = 60.0) -> bool:
    """Make this worker's version current if its deployment has no current version and no other
    version: a fresh stack's first start. Returns True when it did. Never replaces a current one."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        info = await deployment_info(client, version.deployment_name)
        if info is not None:
            if info.routing_config.current_deployment_version.build_id:
                return False
            builds = {s.deployment_version.build_id for s in info.version_summaries}
            if builds - {version.build_id}:
                log.warning(
                    "deployment %s has versions %s and none current: leaving the choice to the operator", version.deployment_name, sorted(builds)
                )
                return False
            if version.build_id in builds:
                await set_current_when_registered(client, version, timeout=max(1.0, deadline - asyncio.get_running_loop().time()))
                log.info("first version of deployment %s: %s made current", version.deployment_name, version.build_id)
                return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.5)  # the version registers with the server on the worker's first polls


async def drainage(client: Client, version: WorkerDeploymentVersion) -> str:
    """DRAINING (pinned workflows still open on it), DRAINED, or UNSPECIFIED (current, ramping, never used)."""
    answer = await client.workflow_service.describe_worker_deployment_version(
        DescribeWorkerDeploymentVersionRequest(namespace=client.namespace, deployment_version=_proto(version)), retry=True
    )
    status = answer.worker_deployment_version_info.drainage_info.status
    return VersionDrainageStatus.Name(status).removeprefix("VERSION_DRAINAGE_STATUS_")


async def retire(client: Client, version: WorkerDeploymentVersion) -> None:
    """Delete a drained version whose workers are gone (the server refuses otherwise)."""
    await client.workflow_service.delete_worker_deployment_version(
        DeleteWorkerDeploymentVersionRequest(namespace=client.namespace, deployment_version=_proto(version), identity=client.identity),
        retry=True,
    )


def version_status(status: int) -> str:
    """INACTIVE, CURRENT, RAMPING, DRAINING or DRAINED."""
    return WorkerDeploymentVersionStatus.Name(status).removeprefix("WORKER_DEPLOYMENT_VERSION_STATUS_")  # type: ignore[arg-type]


def _proto(version: WorkerDeploymentVersion) -> VersionProto:
    return VersionProto(deployment_name=version.deployment_name, build_id=version.build_id)


@dataclass(frozen=True)
class RunsOn:
    """Where a workflow runs, as the server records it."""

    build_id: str  # the version its tasks go to now (UNVERSIONED when none)
    behavior: str  # PINNED, AUTO_UPGRADE, or UNSPECIFIED (unversioned)
    task_builds: tuple[str, ...]  # the build of each completed workflow task, in history order


async def runs_on(handle: WorkflowHandle) -> RunsOn:
    """Read from the server: describe (the version now) and history (the build of every
    completed workflow task). A continued-as-new workflow shows its latest run's history."""
    described = await handle.describe()
    info = described.raw_description.workflow_execution_info.versioning_info
    builds = tuple([build_of(event) async for event in handle.fetch_history_events() if event.HasField("workflow_task_completed_event_attributes")])
    return RunsOn(
        build_id=info.deployment_version.build_id or UNVERSIONED,
        behavior=VersioningBehavior(info.behavior).name,
        task_builds=builds,
    )


def build_of(event: HistoryEvent) -> str:
    attributes = event.workflow_task_completed_event_attributes
    return attributes.deployment_version.build_id or UNVERSIONED

"""Shipping a release without a drain (Worker Versioning), on a dev server of its own.

Build A (the rig as shipped) runs an account and working orders. Build B (tests/versioning/
release_b.py: a real change to both workflows) is deployed beside it and made current. A's orders
finish on A, the account moves to B at its next task without a nondeterminism error (and takes B's
patched path from its next run), new orders run on B, then A reports DRAINED, its workers stop and
it is deleted. Every build id asserted is read back from the server: the build of each completed
workflow task in the histories, and the version each workflow is on now (describe)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from config.load import load_config
from domain.enums import OrderState
from protocol.contract import FIRM_WORKFLOW, ORDER_WORKFLOW, RISK_WORKFLOW, SCENARIO_WORKFLOW, UPDATE_CANCEL, account_task_queue, risk_workflow_id
from protocol.messages import RiskInput
from protocol.order_record import OrderSnapshot
from tests.accounts import finish, intent, wait_state, with_fills
from tests.drills import ROOT, free_port, wait_polling, worker_process
from tests.versioning.release_b import B_WORKFLOWS, RELEASE, RELEASE_MEMO, OrderWorkflowB, RiskWorkflowB, UnguardedAccountB
from worker import server, versioning
from worker.main import WORKFLOWS, build_worker
from worker.versioned_workflows import VERSIONED_WORKFLOWS

# Drainage is re-checked every 3 minutes after a 3-minute grace period by default; the drill's
# server checks every second so a drained version is seen as drained at once.
DRILL_SERVER_FLAGS = [
    "--dynamic-config-value",
    'matching.wv.VersionDrainageStatusVisibilityGracePeriod="1s"',
    "--dynamic-config-value",
    'matching.wv.VersionDrainageStatusRefreshInterval="1s"',
    "--dynamic-config-value",
    'matching.PollerHistoryTTL="1s"',
]
CYCLES_PER_RUN = 4  # the account continues-as-new every few seconds: B's patched path shows in the drill


@pytest_asyncio.fixture(scope="module")
async def drill_server() -> AsyncIterator[str]:
    port = free_port()
    proc = await asyncio.to_thread(server.start, "127.0.0.1", port, None, extra_args=DRILL_SERVER_FLAGS)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await asyncio.to_thread(server.stop, proc)


def rig(address: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = os.environ | {"TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "default"} | env
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True, env=environ, timeout=60)


async def wait_for(check, what: str, timeout: float = 30.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def memo_release(handle: WorkflowHandle) -> str | None:
    described = await handle.describe()
    memo = await described.memo()
    return memo.get(RELEASE_MEMO)


async def failed_tasks(handle: WorkflowHandle) -> list[str]:
    return [
        e.workflow_task_failed_event_attributes.failure.message
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


async def test_release_b_without_draining(drill_server):
    client = await Client.connect(drill_server, data_converter=pydantic_data_converter)
    deployment = f"drill-{uuid.uuid4().hex[:8]}"
    queue = f"versioning-{deployment}"
    a, b = WorkerDeploymentVersion(deployment, "A"), WorkerDeploymentVersion(deployment, "B")
    account = "vdesk"
    config = with_fills(load_config(), 1, other=0.0, cancel_cross_probability=0.0)  # orders stay WORKING until canceled
    rules = config.rules.model_copy(update={"risk_cycle": config.rules.risk_cycle.model_copy(update={"cycles_per_run": CYCLES_PER_RUN})})
    config = config.model_copy(update={"rules": rules})

    async with build_worker(client, queue, a) as worker_a:
        await versioning.set_current_when_registered(client, a)
        assert await versioning.current_build(client, deployment) == "A"
        risk = await client.start_workflow(
            RISK_WORKFLOW,
            RiskInput(account=account, config=config, seed=5, start_exchange_time="11:00", synthetic=True),
            id=risk_workflow_id(account),
            task_queue=account_task_queue(queue),
        )
        first_run = risk.result_run_id
        old = [await submit(client, queue, intent(account, f"a{i}")) for i in range(3)]
        for handle in old:
            await wait_state(handle, {OrderState.WORKING})
        account_on_a = await client.get_workflow_handle(risk.id, run_id=first_run).fetch_history()
        order_on_a = await old[0].fetch_history()

        async with build_worker(client, queue, b, B_WORKFLOWS):
            await versioning.set_current_when_registered(client, b)
            assert await versioning.current_build(client, deployment) == "B"
            # The account moves to B at its next task (its next one-second cycle).
            await wait_for(lambda: _on_build(risk, "B"), "the account to move to B")
            new = [await submit(client, queue, intent(account, f"b{i}")) for i in range(2)]
            for handle in new:
                await wait_state(handle, {OrderState.WORKING})
            # A's orders finish on A (pinned), answered by A's workers.
            for handle in old:
                await handle.execute_update(UPDATE_CANCEL, {"reason": "USER", "note": "release drill"})
            finals = [await finish(h) for h in old]
            assert {s.state for s in finals} == {OrderState.CANCELED}
            # B's change to the account runs from its next run (the patch decision holds for a whole run).
            assert await wait_for(lambda: memo_release(client.get_workflow_handle(risk.id)), "B's account change") == RELEASE
            # What `rig` shows: each account and order with the build it runs on.
            shown = await asyncio.to_thread(rig, drill_server, "builds", "--all", "--account", account, RIG_DEPLOYMENT_NAME=deployment)
            assert shown.returncode == 0, shown.stderr
            # A has nothing pinned left: drained; its workers can go.
            assert await wait_for(lambda: _drained(client, a), "A to drain") == "DRAINED"
        # ... (worker B stopped with its block; started again below for the retirement check)
        assert worker_a.polling()

    # Read back from the server: the build of every completed workflow task.
    for handle in old:
        runs = await versioning.runs_on(handle)
        assert runs.behavior == "PINNED" and runs.build_id == "A" and set(runs.task_builds) == {"A"}, (handle.id, runs)
        assert await memo_release(handle) is None
    for handle in new:
        runs = await versioning.runs_on(handle)
        assert runs.behavior == "PINNED" and runs.build_id == "B" and set(runs.task_builds) == {"B"}, (handle.id, runs)
        assert await memo_release(handle) == RELEASE
    moved = await versioning.runs_on(client.get_workflow_handle(risk.id, run_id=first_run))
    first_b = moved.task_builds.index("B")
    assert first_b > 0 and set(moved.task_builds[:first_b]) == {"A"} and set(moved.task_builds[first_b:]) == {"B"}, moved
    latest = await versioning.runs_on(client.get_workflow_handle(risk.id))
    assert latest.behavior == "AUTO_UPGRADE" and latest.build_id == "B" and set(latest.task_builds) == {"B"}, latest
    assert not await failed_tasks(client.get_workflow_handle(risk.id, run_id=first_run))
    shown_builds = {line.split()[0]: line.split()[2] for line in shown.stdout.splitlines()[3:]}
    assert shown_builds == {risk.id: "B"} | {h.id: "A" for h in old} | {h.id: "B" for h in new}, shown.stdout
    assert f"deployment {deployment}: current B; versions: " in shown.stdout, shown.stdout

    # Why the patch and the pin: B's account code without the guard cannot replay A's account, and
    # B's order code cannot replay an order A started; with the guard, B replays A's account.
    await Replayer(workflows=[RiskWorkflowB], data_converter=pydantic_data_converter).replay_workflow(account_on_a)
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[UnguardedAccountB], data_converter=pydantic_data_converter).replay_workflow(account_on_a)
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[OrderWorkflowB], data_converter=pydantic_data_converter).replay_workflow(order_on_a)

    # A is retired: drained and its workers gone, the server lets it be deleted.
    await wait_for(lambda: _retired(client, a), "A to be deleted")
    info = await versioning.deployment_info(client, deployment)
    assert info is not None and [s.deployment_version.build_id for s in info.version_summaries] == ["B"]
    await client.get_workflow_handle(risk.id).terminate("drill over")


async def test_a_versioned_worker_makes_the_first_version_current_and_never_replaces_one(drill_server):
    # A fresh stack needs no manual step; every later release is the operator's switch.
    client = await Client.connect(drill_server)
    deployment = f"fresh-{uuid.uuid4().hex[:8]}"
    queue = f"adopt-{deployment}"
    env = {"RIG_DEPLOYMENT_NAME": deployment, "RIG_TASK_QUEUE": queue}
    first = worker_process(drill_server, queue, RIG_BUILD_ID="v1", **env)
    second = None
    try:
        await wait_polling(first)
        assert await wait_for(lambda: versioning.current_build(client, deployment), "v1 to become current") == "v1"
        second = worker_process(drill_server, queue, RIG_BUILD_ID="v2", **env)
        await wait_polling(second)
        await wait_for(lambda: _has_version(client, deployment, "v2"), "v2 to register")
        await asyncio.sleep(1.0)  # what the second worker would do, it does right after registering
        assert await versioning.current_build(client, deployment) == "v1"
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.terminate()
                await asyncio.to_thread(proc.wait, 15)


async def _has_version(client: Client, deployment: str, build: str) -> bool:
    info = await versioning.deployment_info(client, deployment)
    return info is not None and build in {s.deployment_version.build_id for s in info.version_summaries}


def test_versioning_settings_are_checked(monkeypatch):
    monkeypatch.delenv("RIG_BUILD_ID", raising=False)
    assert versioning.deployment_version() is None  # unversioned: development and the tests
    monkeypatch.setenv("RIG_BUILD_ID", "2026.12.07-abc123")
    monkeypatch.setenv("RIG_DEPLOYMENT_NAME", "risk-rig")
    version = versioning.deployment_version()
    assert version == WorkerDeploymentVersion("risk-rig", "2026.12.07-abc123")
    config = versioning.deployment_config(version)
    assert config is not None and config.use_worker_versioning and config.default_versioning_behavior == VersioningBehavior.UNSPECIFIED
    monkeypatch.setenv("RIG_DEPLOYMENT_NAME", "risk.rig")
    with pytest.raises(versioning.VersioningSettingsError, match=r"contain no '\.'"):
        versioning.deployment_version()


def test_every_workflow_type_states_its_versioning_behaviour():
    # A versioned worker with no default behaviour refuses a type that states none; an unversioned
    # one registers the plain classes (a behaviour reported by an unversioned worker stalls time skipping).
    assert [w.__temporal_workflow_definition.name for w in VERSIONED_WORKFLOWS] == [w.__temporal_workflow_definition.name for w in WORKFLOWS]
    assert all(w.__temporal_workflow_definition.versioning_behavior == VersioningBehavior.UNSPECIFIED for w in WORKFLOWS)
    stated = {w.__temporal_workflow_definition.name: w.__temporal_workflow_definition.versioning_behavior for w in VERSIONED_WORKFLOWS}
    assert stated == {
        ORDER_WORKFLOW: VersioningBehavior.PINNED,
        RISK_WORKFLOW: VersioningBehavior.AUTO_UPGRADE,
        SCENARIO_WORKFLOW: VersioningBehavior.PINNED,
        FIRM_WORKFLOW: VersioningBehavior.AUTO_UPGRADE,  # long-lived like an account: patched, never pinned
    }


async def submit(client: Client, queue: str, raw: dict) -> WorkflowHandle:
    return await client.start_workflow(ORDER_WORKFLOW, raw, id=raw["intent_id"], task_queue=queue, result_type=OrderSnapshot)


async def _on_build(handle: WorkflowHandle, build: str) -> bool:
    return (await versioning.runs_on(handle)).task_builds[-1:] == (build,)


async def _drained(client: Client, version: WorkerDeploymentVersion) -> str | None:
    status = await versioning.drainage(client, version)
    return status if status == "DRAINED" else None


async def _retired(client: Client, version: WorkerDeploymentVersion) -> bool:
    try:
        await versioning.retire(client, version)
        return True
    except Exception:  # noqa: BLE001 — refused while the server still remembers its pollers
        return False

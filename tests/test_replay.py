"""Replay guards versions: every recorded history replays against today's workflow code, so a
change that would break a workflow already running (recorded before the change) fails here —
such a change needs `workflow.patched`, or a stated reason to retire the set.

Histories live in versioned sets, `tests/histories/v<N>/`, and accumulate: `python -m
tests.histories.record` adds the next set beside the old ones and never replaces one. Every set
replays; the newest must cover every workflow type and path (tests/histories/paths.py reads each
history's workflow type from its first event and its path from its events, never from file
names). Sets that cannot replay any more live under `tests/histories/retired/`, each with a README
saying why; they are the negative control: replayed, they must fail with a nondeterminism error,
which shows the harness can fail. Every set is also replayed with the order workflow inside the
SDK's sandbox (the worker runs it unsandboxed), so it stays sandbox-clean."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from protocol.contract import ORDER_WORKFLOW
from protocol.converter import data_converter as pydantic_data_converter  # the pydantic converter, bounded
from protocol.signing import keyring_from_env
from tests.histories.paths import REQUIRED, paths_of, read, workflow_type
from tests.histories.record import MANIFEST, RETIRED, SET_NAME
from tests.histories.sandboxed import SandboxedOrderWorkflow
from worker.main import WORKFLOWS
from worker.signing import Verifier
from workflows.order import OrderWorkflow

# The worker's workflows, and the same with the order workflow in the sandbox.
RUNNERS = {
    "worker": WORKFLOWS,
    "sandboxed": [SandboxedOrderWorkflow if w is OrderWorkflow else w for w in WORKFLOWS],
}

ROOT = Path(__file__).parent / "histories"
HOW = "record one with `python -m tests.histories.record` (tests/histories/record.py)"


def history_sets(root: Path = ROOT) -> list[Path]:
    """The live sets, oldest first."""
    found = [(int(m.group(1)), d) for d in root.iterdir() if d.is_dir() and (m := SET_NAME.match(d.name))] if root.is_dir() else []
    return [d for _, d in sorted(found)]


def histories(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.json") if p.name != MANIFEST)


SETS = history_sets()
HISTORIES = [p for s in SETS for p in histories(s)]


async def replay_failure(path: Path, runner: str = "worker") -> Exception | None:
    history = read(path)
    assert history.workflow_id, f"{path}: its first event names no workflow id"
    # With the worker's verifier (any key): a signal dropped live for want of a signature is
    # dropped again on replay; a run recorded before signing takes its signals as it did.
    replayer = Replayer(workflows=RUNNERS[runner], data_converter=pydantic_data_converter, interceptors=[Verifier(keyring_from_env())])
    return (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure


async def replay(path: Path, runner: str = "worker") -> None:
    failure = await replay_failure(path, runner)
    if failure is not None:
        history = read(path)
        pytest.fail(
            f"{path.parent.name}/{path.name} ({workflow_type(history)} {history.workflow_id}, {runner}) does not replay: {failure}", pytrace=False
        )


@pytest.mark.parametrize("runner", list(RUNNERS))
@pytest.mark.parametrize("path", HISTORIES or [None], ids=[f"{p.parent.name}/{p.stem}" for p in HISTORIES] or ["no-recorded-set"])
async def test_recorded_history_replays(path, runner):
    if path is None:
        pytest.fail(f"no recorded history set in {ROOT}: {HOW}", pytrace=False)
    await replay(path, runner)


RETIRED_ORDERS = [p for p in sorted((ROOT / RETIRED).glob("*/*.json")) if p.name != MANIFEST and workflow_type(read(p)) == ORDER_WORKFLOW]


@pytest.mark.parametrize("path", RETIRED_ORDERS or [None], ids=[f"{p.parent.name}/{p.stem}" for p in RETIRED_ORDERS] or ["none"])
async def test_the_harness_can_fail_a_retired_set_does_not_replay(path):
    """The negative control: histories of a changed workflow (a retired set) fail replay with a
    nondeterminism error — if they replayed, the replay test would prove nothing."""
    assert path is not None, f"no retired order history under {ROOT / RETIRED}: the negative control needs one"
    failure = await replay_failure(path)
    assert isinstance(failure, NondeterminismError), f"{path.name}: expected a nondeterminism error, got {failure!r}"


def covered(directory: Path) -> set[str]:
    return set().union(*(paths_of(read(p)) for p in histories(directory)))


def test_the_newest_set_covers_every_workflow_type_and_path():
    if not SETS:
        pytest.fail(f"no recorded history set in {ROOT}: {HOW}", pytrace=False)
    newest = SETS[-1]
    kinds = {workflow_type(read(p)) for p in histories(newest)}
    assert {w.__temporal_workflow_definition.name for w in WORKFLOWS} <= kinds, f"{newest.name}: workflow types {sorted(kinds)}"
    missing = sorted(REQUIRED - covered(newest))
    if missing:
        pytest.fail(f"{newest.name} does not cover {missing}: {HOW}", pytrace=False)


def test_retired_sets_say_why():
    retired = ROOT / RETIRED
    sets = [d for d in retired.iterdir() if d.is_dir()] if retired.is_dir() else []
    for directory in sets:
        readme = directory / "README.md"
        assert readme.is_file() and "why" in readme.read_text().lower(), f"{directory}: a retired set needs a README.md saying why"
    stray = [p.name for p in ROOT.glob("*.json")]
    assert not stray, f"histories outside a set: {stray} — move them into a v<N>/ set or under {RETIRED}/ with a reason"


async def test_the_recorder_adds_a_covering_set_beside_the_old_ones(tmp_path):
    """The documented command, on its own dev server, tried on a temporary directory beside a copy
    of an older set: it adds the next set, leaves the old one as it was, covers every path, and
    what it recorded replays (in the sandbox too)."""
    old = tmp_path / "v1"
    old.mkdir()
    (old / "01-kept.json").write_text('{"events": []}')
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.histories.record", "--root", str(tmp_path)],
        cwd=ROOT.parents[1],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (old / "01-kept.json").read_text() == '{"events": []}' and [p.name for p in old.iterdir()] == ["01-kept.json"]
    new = tmp_path / "v2"
    manifest = json.loads((new / MANIFEST).read_text())
    assert sorted(manifest["histories"]) == [p.name for p in histories(new)]
    missing = sorted(REQUIRED - covered(new))
    assert not missing, missing
    for path in histories(new):
        for runner in RUNNERS:
            await replay(path, runner)
    again = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.histories.record", "--root", str(tmp_path), "--name", "v2"],
        cwd=ROOT.parents[1],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 2 and "is never replaced" in again.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a staging directory was left behind"

"""Replay guards versions: every recorded history replays against today's workflow code, so a
change that would break a workflow already running (recorded before the change) fails here —
such a change needs `workflow.patched`, or a stated reason to retire the set.

Histories live in versioned sets, `tests/histories/v<N>/`, and accumulate: `python -m
tests.histories.record` adds the next set beside the old ones and never replaces one. Every set
replays; the newest must cover every workflow type and path (tests/histories/paths.py reads each
history's workflow type from its first event and its path from its events, never from file
names). Sets that cannot replay any more live under `tests/histories/retired/`, each with a README
saying why; they are kept, not replayed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from temporalio.worker import Replayer

from protocol.converter import data_converter as pydantic_data_converter  # the pydantic converter, bounded
from tests.conftest import TASK_QUEUE
from tests.histories.paths import REQUIRED, paths_of, read, workflow_type
from tests.histories.record import MANIFEST, RETIRED, SET_NAME, next_set, record_set
from worker.main import WORKFLOWS

ROOT = Path(__file__).parent / "histories"
HOW = "record one with `python -m tests.histories.record` (tests/histories/record.py)"


def history_sets(root: Path = ROOT) -> list[Path]:
    """The live sets, oldest first."""
    found = [d for d in root.iterdir() if d.is_dir() and SET_NAME.match(d.name)] if root.is_dir() else []
    return sorted(found, key=lambda d: int(SET_NAME.match(d.name).group(1)))


def histories(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.json") if p.name != MANIFEST)


SETS = history_sets()
HISTORIES = [p for s in SETS for p in histories(s)]


async def replay(path: Path) -> None:
    history = read(path)
    assert history.workflow_id, f"{path}: its first event names no workflow id"
    result = await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history, raise_on_replay_failure=False)
    if result.replay_failure is not None:
        pytest.fail(
            f"{path.parent.name}/{path.name} ({workflow_type(history)} {history.workflow_id}) does not replay: {result.replay_failure}", pytrace=False
        )


@pytest.mark.parametrize("path", HISTORIES or [None], ids=[f"{p.parent.name}/{p.stem}" for p in HISTORIES] or ["no-recorded-set"])
async def test_recorded_history_replays(path):
    if path is None:
        pytest.fail(f"no recorded history set in {ROOT}: {HOW}", pytrace=False)
    await replay(path)


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


async def test_the_recorder_adds_a_covering_set_beside_the_old_ones(env, worker, tmp_path):
    """The recorder, tried on a temporary directory beside a copy of an older set: it adds the next
    set, leaves the old one as it was, covers every path, and what it recorded replays."""
    old = tmp_path / "v1"
    old.mkdir()
    (old / "01-kept.json").write_text('{"events": []}')
    assert next_set(tmp_path) == "v2"
    manifest = await record_set(env, TASK_QUEUE, tmp_path / "v2")
    assert (old / "01-kept.json").read_text() == '{"events": []}' and [p.name for p in old.iterdir()] == ["01-kept.json"]
    new = tmp_path / "v2"
    assert sorted(manifest["histories"]) == [p.name for p in histories(new)]
    assert json.loads((new / MANIFEST).read_text())["histories"] == manifest["histories"]
    missing = sorted(REQUIRED - covered(new))
    assert not missing, missing
    for path in histories(new):
        await replay(path)
    with pytest.raises(FileExistsError):
        await record_set(env, TASK_QUEUE, new)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a staging directory was left behind"
    shutil.rmtree(new)

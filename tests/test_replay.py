"""Replay recorded histories (tests/histories, from real runs) against today's workflow code: a
non-deterministic change to a workflow fails here. Re-record with `python -m tests.histories.record`."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker.main import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_cover_every_workflow_type():
    kinds = {p.stem.split("__")[0].split("-")[0] for p in HISTORIES}
    assert {"order", "risk", "scenario"} <= kinds


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path):
    workflow_id = path.stem.split("__")[1]
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"

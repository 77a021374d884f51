"""Run digests (DESIGN.md §3): the same scenario and seed give the same digest, another seed another
one; and the golden-digest tooling (scenarios/golden.py, scenarios/record_digests.py), tried on a
temporary directory.

Every shipped scenario runs a second time here, all at once (`second_runs`), against the first run
the session already made (`scenario_runs`, conftest)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_asyncio
import yaml

from activities.scenarios import SCENARIO_DIR, scenario_names
from domain.digest import DIGEST_VERSION, DigestKind, digest_of, first_difference
from protocol.contract import SCENARIO_WORKFLOW
from scenarios import golden
from scenarios.record_digests import record
from scenarios.spec import ScenarioReport
from tests.conftest import TASK_QUEUE

ROOT = Path(__file__).resolve().parents[1]
DIGEST = r"^sha256:[0-9a-f]{64}$"


async def run(client, scenario, tag: str) -> ScenarioReport:
    label = scenario if isinstance(scenario, str) else scenario["name"]
    handle = await client.start_workflow(
        SCENARIO_WORKFLOW, scenario, id=f"scenario-{label}-{tag}-{time.time_ns()}", task_queue=TASK_QUEUE, result_type=ScenarioReport
    )
    return await golden.report_of(handle)


@pytest_asyncio.fixture(scope="module")
async def second_runs(client, worker) -> dict[str, asyncio.Task]:
    return {name: asyncio.create_task(run(client, name, "again")) for name in scenario_names()}


@pytest.mark.parametrize("name", scenario_names())
async def test_a_scenario_run_twice_gives_the_same_digest(client, scenario_runs, second_runs, name):
    (first, _), second = await scenario_runs[name], await second_runs[name]
    assert re.match(DIGEST, first.digest), first.digest
    if first.digest != second.digest:
        a, b = await asyncio.gather(golden.observed_items(client, first.account), golden.observed_items(client, second.account))
        pytest.fail(f"{name}: two runs, two digests: {first.digest} / {second.digest}; first difference: {first_difference(a, b)}", pytrace=False)


def random_flow_spec(**random_orders) -> dict:
    spec = yaml.safe_load((SCENARIO_DIR / "random_flow.yaml").read_text())
    spec["random_orders"] = spec["random_orders"] | random_orders
    return spec


async def test_random_flow_with_another_seed_gives_another_digest(client, worker, scenario_runs):
    shipped, _ = await scenario_runs["random_flow"]
    seed = random_flow_spec()["random_orders"]["seed"]
    same, other = await asyncio.gather(run(client, random_flow_spec(), "inline"), run(client, random_flow_spec(seed=seed + 1), "seed"))
    assert same.digest == shipped.digest, "the inline copy of random_flow must give the shipped run's digest"
    assert other.digest != shipped.digest, f"random_orders.seed {seed + 1} gave the digest of seed {seed}"
    a, b = await asyncio.gather(golden.observed_items(client, shipped.account), golden.observed_items(client, other.account))
    assert first_difference(a, b) is not None


# ── the golden-digest tooling, on a temporary directory ──────────────────────────────────────
@pytest_asyncio.fixture(scope="module")
async def recorded(client, worker, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("digests")
    outcome = await record(client, TASK_QUEUE, ["A", "B"], directory)
    assert outcome == {"A": "", "B": ""}, outcome
    return directory


async def test_recorded_golden_digests_match_the_runs(recorded, client, scenario_runs):
    assert json.loads((recorded / golden.INDEX).read_text()).keys() == {"A", "B"}
    for name in ("A", "B"):
        report, _ = await scenario_runs[name]
        items = await golden.observed_items(client, report.account)
        assert golden.load(name, recorded).digest == report.digest == digest_of(items)
        assert golden.load(name, recorded).version == DIGEST_VERSION
        assert golden.problem(name, report.digest, items, recorded) is None


async def test_a_mismatch_names_the_scenario_both_digests_and_the_first_difference(recorded, client, scenario_runs, tmp_path):
    report, _ = await scenario_runs["B"]
    items = await golden.observed_items(client, report.account)
    kinds = {i.kind for i in items}
    assert {DigestKind.DECISION, DigestKind.ORDER, DigestKind.FINAL} <= kinds, kinds
    for kind in sorted(kinds, key=lambda k: k.value):  # an item of every kind is compared, not only decisions
        expected = [i.model_copy(deep=True) for i in items]
        first = next(i for i in expected if i.kind is kind)
        first.body["tampered"] = True
        tampered = golden.write("B", expected, tmp_path)
        problem = golden.problem("B", report.digest, items, tmp_path)
        assert problem is not None
        assert "scenario B" in problem and report.digest in problem and tampered.digest in problem
        assert f"item #{first.seq}: expected #{first.seq} {kind.value} " in problem and "tampered" in problem, problem
        assert "python -m scenarios.record_digests B" in problem
    longer = [*items, items[-1].model_copy(update={"seq": items[-1].seq + 1})]
    golden.write("B", longer, tmp_path)
    assert "observed nothing" in golden.problem("B", report.digest, items, tmp_path)


async def test_a_scenario_without_a_golden_digest_fails_and_says_how_to_record_it(recorded, client, scenario_runs):
    report, _ = await scenario_runs["C"]
    problem = golden.problem("C", report.digest, [], recorded)
    assert "no golden digest" in problem and "`python -m scenarios.record_digests C`" in problem and report.digest in problem


def test_hand_edited_golden_files_are_refused(recorded, tmp_path):
    for path in recorded.iterdir():
        (tmp_path / path.name).write_text(path.read_text())
    index = json.loads((tmp_path / golden.INDEX).read_text())
    index["A"] = "sha256:" + "0" * 64
    (tmp_path / golden.INDEX).write_text(json.dumps(index))
    a = golden.load("A", recorded)
    assert "the golden files disagree" in golden.problem("A", a.digest, a.items, tmp_path)
    older = json.loads((recorded / "A.json").read_text()) | {"version": DIGEST_VERSION - 1}
    (tmp_path / "A.json").write_text(json.dumps(older))
    assert f"holds digest version {DIGEST_VERSION - 1}" in golden.problem("A", a.digest, a.items, tmp_path)


async def test_the_record_command_records_on_its_own_server(tmp_path, scenario_runs):
    """The documented command, end to end: its own dev server and worker; the digest it records
    is the one the session's server gave (machine- and server-independent)."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "scenarios.record_digests", "A", "--dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report, _ = await scenario_runs["A"]
    assert json.loads((tmp_path / golden.INDEX).read_text()) == {"A": report.digest}
    assert "recorded A" in done.stdout and "1/1 recorded" in done.stdout
    unknown = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "scenarios.record_digests", "no_such"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode == 2 and "unknown scenarios: no_such" in unknown.stderr


async def test_a_tampered_collar_changes_the_digest_not_only_the_expectations():
    """The reviewer's tamper (the collar's refusal under another reject code), in a process of its
    own: the scenario fails its expectation *and* its digest differs from the golden one, the
    first difference naming the order and its reject reason. Before digest v2 the digest stayed
    equal to the golden one."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.tamper", "control_price_collar"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert not seen["passed"] and any("reject_reason PRICE_COLLAR" in f for f in seen["failures"]), seen
    assert seen["digest"] != golden.load_index()["control_price_collar"], "the digest did not see the tampered refusal"
    assert seen["problem"] and " order " in seen["problem"] and "MAX_ORDER_QUANTITY" in seen["problem"], seen["problem"]

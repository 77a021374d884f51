"""Golden digests: the expected run digest of every shipped scenario, kept in `scenarios/digests/`.

- `scenarios/digests/index.json` — `{"<scenario>": "sha256:<64 hex>", …}`, one line per scenario;
- `scenarios/digests/<scenario>.json` — the scenario's recorded run: its digest and the canonical
  parts it is computed from (decisions, intents, fills, final positions, P&L), so a mismatch can
  say which decision, intent, fill or position changed first.

`python -m scenarios.record_digests [NAMES…]` records them (scenarios/record_digests.py); `make
test` checks every shipped scenario's run against them (tests/test_scenarios.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from domain.digest import DigestParts, canonical, digest, first_difference
from protocol.contract import risk_workflow_id
from protocol.messages import RiskResult
from protocol.run_digest import digest_parts
from scenarios.spec import ScenarioReport

DIGESTS_DIR = Path(__file__).resolve().parent / "digests"
INDEX = "index.json"
RECORD_COMMAND = "python -m scenarios.record_digests"


class Golden(BaseModel):
    scenario: str
    digest: str
    parts: DigestParts


def record_command(names: list[str] | None = None) -> str:
    return " ".join([RECORD_COMMAND, *(names or [])])


def load_index(directory: Path = DIGESTS_DIR) -> dict[str, str]:
    path = directory / INDEX
    return json.loads(path.read_text()) if path.is_file() else {}


def load(name: str, directory: Path = DIGESTS_DIR) -> Golden | None:
    path = directory / f"{name}.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())  # {"scenario", "digest", then each part of DigestParts}
    return Golden(scenario=data.pop("scenario"), digest=data.pop("digest"), parts=DigestParts.model_validate(data))


def write(name: str, parts: DigestParts, directory: Path = DIGESTS_DIR) -> Golden:
    """Record `parts` as the scenario's golden run (its file, and its line in the index)."""
    directory.mkdir(parents=True, exist_ok=True)
    golden = Golden(scenario=name, digest=digest(parts), parts=DigestParts.model_validate_json(canonical(parts)))
    # One part per line: a re-recording's diff shows which decisions, intents or fills changed.
    body = {"scenario": golden.scenario, "digest": golden.digest}
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in body.items()]
    for key in DigestParts.model_fields:
        value = getattr(golden.parts, key)
        if isinstance(value, list):
            rows = [json.dumps(row, sort_keys=True, ensure_ascii=False) for row in value]
            lines.append(f'  "{key}": [' + (",".join(f"\n    {r}" for r in rows) + "\n  ]" if rows else "]"))
        else:
            lines.append(f'  "{key}": {json.dumps(value, sort_keys=True, ensure_ascii=False)}')
    (directory / f"{name}.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")
    index = load_index(directory) | {name: golden.digest}
    (directory / INDEX).write_text(json.dumps(dict(sorted(index.items())), indent=2) + "\n")
    return golden


def problem(name: str, observed_digest: str, observed: DigestParts, directory: Path = DIGESTS_DIR) -> str | None:
    """None when the run matches the scenario's golden digest; else what is wrong, said plainly:
    the scenario, both digests, the first differing decision/intent/fill/position, and how to
    re-record when the change is intended."""
    index = load_index(directory)
    golden = load(name, directory)
    where = directory / f"{name}.json"
    if name not in index or golden is None:
        return f"scenario {name} has no golden digest in {directory} (observed {observed_digest}): record it with `{record_command([name])}`"
    if not (index[name] == golden.digest == digest(golden.parts)):
        return (
            f"scenario {name}: the golden files disagree (index {index[name]}, {where.name} {golden.digest}, its parts "
            f"{digest(golden.parts)}): edited by hand, or the digest's parts changed (domain/digest.py); "
            f"re-record with `{record_command([name])}`"
        )
    if observed_digest == golden.digest:
        return None
    difference = first_difference(golden.parts, observed) or "(the parts are equal: the digest was computed from other parts)"
    return (
        f"scenario {name}: run digest {observed_digest} differs from the golden {golden.digest} ({where})\n"
        f"  first difference: {difference}\n"
        f"  if the change is intended, re-record: `{record_command([name])}`"
    )


async def report_of(handle: WorkflowHandle, attempts: int = 5) -> ScenarioReport:
    """A scenario's report. A loaded server may let the result's long poll run past its deadline
    (or be briefly unavailable): the run itself goes on, so it is asked again."""
    for attempt in range(1, attempts + 1):
        try:
            return await handle.result()
        except RPCError as err:
            if err.status not in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE) or attempt == attempts:
                raise
    raise AssertionError("unreachable")


async def risk_result(client: Client, account: str) -> RiskResult:
    """The account's final result (through its continue-as-new chain): what the digest covers."""
    return await client.get_workflow_handle(risk_workflow_id(account), result_type=RiskResult).result()


def parts_of(result: RiskResult) -> DigestParts:
    return digest_parts(result.account, result.decisions, result.intents, result.fills, result.positions, result.pnl)


async def observed_parts(client: Client, account: str) -> DigestParts:
    """The canonical parts of a scenario run, rebuilt from its account's RiskResult (the scenario
    report carries the digest, not the parts)."""
    return parts_of(await risk_result(client, account))

"""Golden digests: the expected run digest of every shipped scenario, kept in `scenarios/digests/`.

- `scenarios/digests/index.json` — `{"<scenario>": "sha256:<64 hex>", …}`, one line per scenario;
- `scenarios/digests/<scenario>.json` — the scenario's recorded run: the digest's version, the
  digest and every item it folded (decisions, quiet stretches, orders with their outcomes, fills,
  cancel/replace answers, trading-state changes, the final book), one per line, so a mismatch can
  say which item changed first and a re-recording's diff shows it.

`python -m scenarios.record_digests [NAMES…]` records them (scenarios/record_digests.py); `make
test` checks every shipped scenario's run against them (tests/test_scenarios.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from domain.digest import DIGEST_VERSION, DigestItem, canonical, digest_of, first_difference
from protocol.contract import risk_workflow_id
from protocol.messages import RiskResult
from scenarios.spec import ScenarioReport

DIGESTS_DIR = Path(__file__).resolve().parent / "digests"
INDEX = "index.json"
RECORD_COMMAND = "python -m scenarios.record_digests"


class Golden(BaseModel):
    scenario: str
    version: int
    digest: str
    items: list[DigestItem]


def record_command(names: list[str] | None = None) -> str:
    return " ".join([RECORD_COMMAND, *(names or [])])


def load_index(directory: Path = DIGESTS_DIR) -> dict[str, str]:
    path = directory / INDEX
    return json.loads(path.read_text()) if path.is_file() else {}


def load(name: str, directory: Path = DIGESTS_DIR) -> Golden | None:
    path = directory / f"{name}.json"
    if not path.is_file():
        return None
    return Golden.model_validate_json(path.read_text())


def whole(items: list[DigestItem]) -> bool:
    """The items of a whole run (none dropped from its start): only those can be recorded."""
    return not items or items[0].seq == 1


def write(name: str, items: list[DigestItem], directory: Path = DIGESTS_DIR) -> Golden:
    """Record `items` (a whole run's) as the scenario's golden run (its file, and its line in the index)."""
    if not whole(items):
        raise ValueError(f"scenario {name}: its run kept items from #{items[0].seq} only; a golden run must be whole")
    directory.mkdir(parents=True, exist_ok=True)
    golden = Golden(scenario=name, version=DIGEST_VERSION, digest=digest_of(items), items=items)
    head = [f"  {json.dumps(k)}: {json.dumps(getattr(golden, k))}" for k in ("scenario", "version", "digest")]
    rows = [canonical(item.model_dump(mode="json")) for item in items]
    body = ",\n".join(head) + ',\n  "items": [' + (",".join(f"\n    {r}" for r in rows) + "\n  ]" if rows else "]")
    (directory / f"{name}.json").write_text("{\n" + body + "\n}\n")
    index = load_index(directory) | {name: golden.digest}
    (directory / INDEX).write_text(json.dumps(dict(sorted(index.items())), indent=2) + "\n")
    return golden


def problem(name: str, observed_digest: str, observed: list[DigestItem], directory: Path = DIGESTS_DIR) -> str | None:
    """None when the run matches the scenario's golden digest; else what is wrong, said plainly:
    the scenario, both digests, the first differing item, and how to re-record when the change
    is intended."""
    index = load_index(directory)
    golden = load(name, directory)
    where = directory / f"{name}.json"
    if name not in index or golden is None:
        return f"scenario {name} has no golden digest in {directory} (observed {observed_digest}): record it with `{record_command([name])}`"
    if golden.version != DIGEST_VERSION:
        return (
            f"scenario {name}: its golden file holds digest version {golden.version}, the rig computes version {DIGEST_VERSION} "
            f"(domain/digest.py); re-record with `{record_command([name])}`"
        )
    if not (index[name] == golden.digest == digest_of(golden.items)):
        return (
            f"scenario {name}: the golden files disagree (index {index[name]}, {where.name} {golden.digest}, its items "
            f"{digest_of(golden.items)}): edited by hand; re-record with `{record_command([name])}`"
        )
    if observed_digest == golden.digest:
        return None
    difference = first_difference(golden.items, observed) or "(the items are equal: the digest was computed from other items)"
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


async def observed_items(client: Client, account: str) -> list[DigestItem]:
    """The items a scenario run's digest folded, from its account's RiskResult (the scenario
    report carries the digest, not the items)."""
    return (await risk_result(client, account)).digest_items

"""Issue 20: every input from outside is bounded before it is used — scenario files, rules,
BOD CSVs and JSON payloads — with one line naming the file, line or field and the limit, and
nothing changed. Each reproduction of the issue is a test here (the CLI's are in
tests/test_cli_boundary.py, the generated ones in tests/test_hostile_inputs.py)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest
from pydantic_core import to_json
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

import activities.scenarios as scenario_loader
from activities.scenarios import MAX_PLAN_BYTES, MAX_SCENARIO_FILE_BYTES, plan_scenario
from config import yaml_safe
from config.load import MAX_CONFIG_FILE_BYTES, MAX_CONFIG_JSON_BYTES, ConfigError, load_config, load_rules
from domain.enums import OrderState, RejectReason
from domain.limits import MAX_PCT, MAX_QUANTITY
from domain.rules import MAX_GROUPS, MAX_INSTRUMENTS, MAX_NAME_LENGTH, MAX_RESTRICTED_SYMBOLS, MAX_SYMBOL_OVERRIDES, RigConfig, RiskRules
from protocol.contract import ORDER_WORKFLOW, RISK_WORKFLOW, SCENARIO_WORKFLOW, UPDATE_CANCEL, UPDATE_SET_RULES, account_task_queue, risk_workflow_id
from protocol.converter import MAX_JSON_DEPTH, MAX_PAYLOAD_BYTES, data_converter
from protocol.order_record import OrderSnapshot
from tests.accounts import finish, intent, open_account, submit, wait_state
from tests.conftest import TASK_QUEUE

PAYLOAD_LIMIT = 2 * 1024 * 1024  # Temporal's limit on one payload


def scenario_text(scenario: str, **top: str) -> str:
    """A valid scenario file; `top` replaces or adds top-level lines (value as YAML text)."""
    lines = {
        "name": scenario,
        "start": '"10:00"',
        "stop": '"10:01"',
        "events": '\n  - at: "10:00"\n    order: {id: o1, symbol: AAPL, side: BUY, quantity: 100, limit_price: 190.0}',
        "expect": "\n  - {order: {id: o1, lost: false}}",
    } | top
    return "".join(f"{key}: {value}\n" for key, value in lines.items())


@pytest.fixture
def scenario_dir(tmp_path, monkeypatch) -> Path:
    """A copy of scenarios/ that the loader (and the session's in-process worker) reads; the
    shipped scenarios stay loadable from it, so nothing else running is disturbed."""
    copy = tmp_path / "scenarios"
    shutil.copytree(scenario_loader.SCENARIO_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__", "digests"))
    monkeypatch.setattr(scenario_loader, "SCENARIO_DIR", copy)
    return copy


def refusal(scenario) -> str:
    """plan_scenario's one-line refusal."""
    with pytest.raises(ValueError) as info:
        plan_scenario(scenario)
    text = str(info.value)
    assert "\n" not in text and len(text) < 400, text
    return text


# ── scenario files ──────────────────────────────────────────────────────────────────────────
# Under 640 bytes (the issue: 633): seven levels of ten aliases in an order's free-form field (its
# extra fields travel as a desk's JSON). PyYAML shares the aliased lists, so loading is cheap; the
# plan's JSON writes every one out: 10 ** 7 strings, some 80 MB, a workflow task retried forever.
ALIAS_BOMB = scenario_text(
    "bomb",
    events='\n  - at: "10:00"\n    order:\n      id: o1\n      symbol: AAPL\n      side: BUY\n      quantity: 100\n'
    "      limit_price: 190.0\n"
    '      x0: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"      x{i}: &{'abcdefg'[i]} [{','.join(['*' + 'abcdefg'[i - 1]] * 10)}]\n" for i in range(1, 7)),
)


def test_an_alias_bomb_in_an_order_events_free_form_field_is_refused(scenario_dir):
    assert len(ALIAS_BOMB) < 640, len(ALIAS_BOMB)
    (scenario_dir / "bomb.yaml").write_text(ALIAS_BOMB)
    assert refusal("bomb") == "scenario bomb: bomb.yaml: line 12: anchors (&name) are not allowed"


def test_a_50_mb_scenario_file_is_refused_before_it_is_read(scenario_dir):
    (scenario_dir / "huge.yaml").write_text(scenario_text("huge", description="x" * 50_000_000))
    assert refusal("huge") == f"scenario huge: huge.yaml: (file): larger than the limit of {MAX_SCENARIO_FILE_BYTES:,} bytes"


@pytest.mark.parametrize(
    ("top", "says"),
    [
        ({"date": '"2026-02-30"'}, "date: Value error, 2026-02-30 is not a calendar date: day is out of range for month"),
        ({"date": "2026-02-30"}, "line 9: 2026-02-30: day is out of range for month"),  # unquoted: YAML's own date
        ({"date": '"9999-12-31"'}, "is outside 1970-01-01..2199-12-31"),
        ({"equity": ".inf"}, "equity: Input should be a finite number"),
        ({"equity": "1e300"}, "equity: Input should be less than or equal to 10000000000000"),
        ({"seed": str(10**38)}, f"seed: Input should be less than or equal to {2**63 - 1}"),
        ({"seed": "9" * 60}, "an integer of 60 digits is over the limit of 40"),
        ({"stop": '"09:59"'}, "stop (09:59) is before start (10:00)"),
        ({"name": "other"}, "name: 'other' differs from the file's name 'case'"),
        ({"description": "x" * 1001}, "description: String should have at most 1000 characters"),
    ],
    ids=[
        "date-30-feb",
        "date-unquoted",
        "date-far",
        "equity-inf",
        "equity-huge",
        "seed-1e38",
        "seed-60-digits",
        "stop-before-start",
        "name",
        "description",
    ],
)
def test_scenario_values_are_real_and_bounded(scenario_dir, top, says):
    (scenario_dir / "case.yaml").write_text(scenario_text("case", **top))
    assert says in refusal("case")


def test_duplicate_keys_are_refused_in_scenarios_and_rules(scenario_dir, tmp_path):
    (scenario_dir / "dup.yaml").write_text(scenario_text("dup") + 'stop: "16:00"\n')
    assert "dup.yaml: line 9: duplicate key 'stop' (first on line 3)" in refusal("dup")
    rules = tmp_path / "rules.yaml"
    rules.write_text(Path(scenario_loader.DEFAULT_RULES).read_text() + "hard_cap_pct: 500\n")
    with pytest.raises(ConfigError) as info:
        load_rules(rules)
    assert "duplicate key 'hard_cap_pct' (first on line" in str(info.value) and info.value.key.startswith("line ")


def test_an_order_events_free_form_fields_are_few_and_small(scenario_dir):
    big = scenario_text("big", events='\n  - at: "10:00"\n    order: {id: o1, symbol: AAPL, side: BUY, quantity: 100, note: "' + "x" * 300 + '"}')
    (scenario_dir / "big.yaml").write_text(big)
    assert "order o1: note is 302 bytes as JSON, over the limit of 256" in refusal("big")
    many = ", ".join(f"f{i}: 1" for i in range(17))
    (scenario_dir / "many.yaml").write_text(
        scenario_text("many", events=f'\n  - at: "10:00"\n    order: {{id: o1, symbol: AAPL, side: BUY, quantity: 1, {many}}}')
    )
    assert "order o1: 17 extra fields, over the limit of 16" in refusal("many")


def test_a_plan_is_bounded_below_the_local_activity_result_limit(scenario_dir):
    order = '\n  - {at: "10:00", order: {id: o1, symbol: AAPL, side: BUY, quantity: 100, limit_price: 190.0}}'
    cancels = "".join('\n  - {at: "10:00", cancel: {id: o1, reason: USER}}' for _ in range(999))
    (scenario_dir / "wide.yaml").write_text(scenario_text("wide", events=order + cancels))
    plan = plan_scenario("wide")  # the most events a scenario may have: far below the limit
    assert len(plan.timeline) == 1000 and len(plan.model_dump_json()) < MAX_PLAN_BYTES / 2
    (scenario_dir / "wider.yaml").write_text(scenario_text("wider", events=order + cancels + cancels[:52]))
    assert "events: List should have at most 1000 items" in refusal("wider")


# ── scenario paths stay inside scenarios/ ───────────────────────────────────────────────────
def test_positions_naming_a_host_file_is_refused_and_echoes_nothing(scenario_dir):
    (scenario_dir / "passwd.yaml").write_text(scenario_text("passwd", positions='"/etc/passwd"'))
    text = refusal("passwd")
    assert text == "scenario passwd: positions: must name a file inside scenarios/ (a relative path, no '..', no link out of the folder)"
    for path in ("../../../../etc/passwd", "bod/../../x.csv"):
        (scenario_dir / "up.yaml").write_text(scenario_text("up", positions=f'"{path}"'))
        assert "up: positions: must name a file inside scenarios/" in refusal("up")


def test_a_link_out_of_the_folder_is_refused(scenario_dir, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("symbol,bucket,quantity,avg_cost\nsecret-row,LT,1,1\n")
    (scenario_dir / "bod" / "link.csv").symlink_to(outside)
    (scenario_dir / "link.yaml").write_text(scenario_text("link", positions='"bod/link.csv"'))
    text = refusal("link")
    assert "link: positions: must name a file inside scenarios/" in text and "secret" not in text


def test_a_scenario_name_that_is_a_path_loads_nothing_outside(scenario_dir, tmp_path):
    (tmp_path / "x.yaml").write_text(scenario_text("x"))
    name = os.path.relpath(tmp_path / "x", scenario_dir)  # "../x" from the folder's copy
    assert name.startswith("..")
    assert "is not a scenario's name" in refusal(name)
    assert "is not a scenario's name" in refusal("../../../../tmp/x")


def test_market_file_outside_the_folder_is_refused(scenario_dir, tmp_path):
    day = tmp_path / "day"
    day.mkdir()
    (day / "day.json").write_text('{"secret": "do not show"}')
    for where in (str(day), os.path.relpath(day, scenario_dir)):
        (scenario_dir / "mkt.yaml").write_text(scenario_text("mkt", market=f'{{file: "{where}"}}'))
        assert "mkt: market.file: must name a file inside scenarios/" in refusal("mkt")
    (scenario_dir / "day").mkdir()
    (scenario_dir / "day" / "day.json").symlink_to(day / "day.json")  # a file of the day linking out
    (scenario_dir / "mkt.yaml").write_text(scenario_text("mkt", market="{file: day}"))
    text = refusal("mkt")
    assert "market.file: must name a file inside scenarios/" in text and "secret" not in text


def test_a_bod_csv_that_is_not_utf8_is_one_line_with_its_byte(scenario_dir):
    (scenario_dir / "bod" / "latin1.csv").write_bytes("symbol,bucket,quantity,avg_cost\nAAPL,LT,10,100\n# café\n".encode("latin-1"))
    (scenario_dir / "latin1.yaml").write_text(scenario_text("latin1", positions='"bod/latin1.csv"'))
    assert refusal("latin1") == "scenario latin1: positions: bod/latin1.csv: line 3, byte 52: not UTF-8 (byte 0xe9); save the file as UTF-8"


# ── the same refusals reach a scenario run as a failed workflow, never a failed task ───────
@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("bomb", ALIAS_BOMB, "anchors (&name) are not allowed"),
        ("big_date", scenario_text("big_date", date='"2026-02-30"'), "not a calendar date"),
        ("inf_equity", scenario_text("inf_equity", equity=".inf"), "equity"),
        ("big_seed", scenario_text("big_seed", seed=str(10**38)), "seed"),
        ("passwd", scenario_text("passwd", positions='"/etc/passwd"'), "positions: must name a file inside scenarios/"),
    ],
)
async def test_a_refused_scenario_fails_its_run_with_the_reason_and_no_task_fails(client, worker, scenario_dir, name, text, says):
    (scenario_dir / f"{name}.yaml").write_text(text)
    handle = await client.start_workflow(SCENARIO_WORKFLOW, name, id=f"scenario-bounds-{name}-{os.urandom(4).hex()}", task_queue=TASK_QUEUE)
    with pytest.raises(WorkflowFailureError) as info:
        await asyncio.wait_for(handle.result(), timeout=30)
    assert says in str(info.value.cause), info.value.cause
    assert await task_failures(client, handle.id) == []


async def task_failures(client: Client, workflow_id: str, run_id: str | None = None) -> list[str]:
    events = [e async for e in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events()]
    return [e.workflow_task_failed_event_attributes.failure.message for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]


# ── rules: every list and map bounded; the largest accepted still continues as new ─────────
LONGEST_SYMBOLS = [f"Z{n:011d}" for n in range(MAX_RESTRICTED_SYMBOLS)]  # 12 characters, the most a symbol may have
LONGEST_PCT = 2.2250738585072014e-308  # > 0 and within MAX_PCT, and the longest a float prints


def largest_rules(config: RigConfig, **risk_cycle: int) -> RiskRules:
    """Every list and map at its bound, every entry at its longest: the largest rules accepted."""
    data = config.rules.model_dump(mode="json")
    data["controls"]["restricted"]["symbols"] = ["AAPL", *LONGEST_SYMBOLS[1:]]
    data["controls"]["max_order_quantity"]["per_symbol"] = dict.fromkeys(LONGEST_SYMBOLS[:MAX_SYMBOL_OVERRIDES], MAX_QUANTITY)
    data["controls"]["max_position"]["per_symbol"] = dict.fromkeys(LONGEST_SYMBOLS[:MAX_SYMBOL_OVERRIDES], LONGEST_PCT)
    data["risk_cycle"] |= risk_cycle
    return RiskRules.model_validate(data)


def test_every_rules_list_and_map_is_bounded_and_the_largest_accepted_is_measured(config, tmp_path, capsys):
    rules = largest_rules(config)
    size = len(to_json(rules))
    with capsys.disabled():
        print(f"\nlargest accepted rules: {size:,} bytes as JSON ({size / PAYLOAD_LIMIT:.0%} of the 2 MiB payload limit)")
    assert size < PAYLOAD_LIMIT / 4
    path = tmp_path / "largest.yaml"
    path.write_text(json.dumps(rules.model_dump(mode="json")))  # JSON is YAML: the file a desk would load
    assert path.stat().st_size < MAX_CONFIG_FILE_BYTES and load_rules(path) == rules
    data = rules.model_dump(mode="json")
    for where, value in (
        (("controls", "restricted", "symbols"), [*data["controls"]["restricted"]["symbols"], "ONEMORE"]),
        (("controls", "max_order_quantity", "per_symbol"), data["controls"]["max_order_quantity"]["per_symbol"] | {"ONEMORE": 1}),
        (("controls", "max_position", "per_symbol"), data["controls"]["max_position"]["per_symbol"] | {"ONEMORE": 1.0}),
        (("hard_cap_pct",), MAX_PCT * 2),
        (("controls", "max_order_quantity", "default"), MAX_QUANTITY + 1),
        (("controls", "order_rate", "window_seconds"), 10**9),
    ):
        broken = json.loads(json.dumps(data))
        node = broken
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = value
        path.write_text(json.dumps(broken))
        with pytest.raises(ConfigError) as info:
            load_rules(path)
        assert info.value.key.startswith(".".join(where)) and ("at most" in info.value.problem or "less than" in info.value.problem), info.value


def test_rules_and_universe_together_are_bounded(config, tmp_path):
    """Each file within its bounds, both together still carried by every account: the largest
    rules with the largest universe (5,000 instruments, every name at its longest) are refused."""
    rules, universe = tmp_path / "rules.json", tmp_path / "universe.json"
    rules.write_text(largest_rules(config).model_dump_json())
    universe.write_text(config.universe.model_dump_json())
    assert load_config(rules, universe).rules == largest_rules(config)
    groups = [f"G{i:03d}".ljust(MAX_NAME_LENGTH, "X") for i in range(MAX_GROUPS)]
    instruments = [
        {
            "symbol": symbol,
            "group": groups[n % MAX_GROUPS],
            "bucket": "MM_PURE",
            "lot_size": MAX_QUANTITY,
            "reference_price": LONGEST_PCT,
            "adv": 1000 * MAX_QUANTITY,
        }
        for n, symbol in enumerate(LONGEST_SYMBOLS[:MAX_INSTRUMENTS])
    ]
    universe.write_text(json.dumps({"groups": groups, "instruments": instruments}))
    with pytest.raises(ConfigError) as info:
        load_config(rules, universe)
    assert f"over the limit of {MAX_CONFIG_JSON_BYTES:,}" in str(info.value), info.value


async def test_an_account_given_the_largest_rules_continues_as_new(env, client, worker, config, account):
    handle = await open_account(env, account, config, other=0.0)
    first = (await handle.describe()).run_id
    rules = largest_rules(config, cycle_seconds=1, cycles_per_run=2)
    answer = await handle.execute_update(UPDATE_SET_RULES, rules, result_type=str)
    assert "rules" in answer.lower(), answer
    for _ in range(300):  # the update's cycle is the run's second: then continue-as-new
        if (await client.get_workflow_handle(handle.id).describe()).run_id != first:
            break
        await asyncio.sleep(0.1)
    latest = (await client.get_workflow_handle(handle.id).describe()).run_id
    assert latest != first, "the account never continued as new"
    events = [e async for e in client.get_workflow_handle(handle.id, run_id=first).fetch_history_events()]
    assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    order = await finish(await submit(client, intent(account, "restricted")))
    assert (order.state, order.reject_reason) == (OrderState.REJECTED, RejectReason.RESTRICTED_SYMBOL), "the new run holds the rules"
    assert await task_failures(client, handle.id, first) == [] and await task_failures(client, handle.id, latest) == []


# ── JSON payloads: depth and size bounded in the data converter ────────────────────────────
def raw_json(text: str | bytes) -> RawValue:
    data = text.encode() if isinstance(text, str) else text
    return RawValue(Payload(metadata={"encoding": b"json/plain"}, data=data))


def test_the_converter_refuses_deep_or_huge_json_before_decoding():
    converter = data_converter.payload_converter
    at_limit = raw_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH).payload
    assert converter.from_payloads([at_limit], [object]) is not None
    deeper = raw_json('{"a": "[[[[", "b": ' + "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1) + "}").payload
    [refused] = converter.from_payloads([deeper], None)
    assert refused == f"payload refused: JSON nested {MAX_JSON_DEPTH + 2} levels deep, over the limit of {MAX_JSON_DEPTH}"
    with pytest.raises(ApplicationError, match="nested 66 levels deep"):
        converter.from_payloads([deeper], [OrderSnapshot])
    huge = raw_json(b'"' + b"x" * MAX_PAYLOAD_BYTES + b'"').payload
    assert converter.from_payloads([huge], [object])[0].startswith("payload refused: 2,097,154 bytes")


async def test_an_order_input_nested_3000_deep_is_rejected_with_a_reason_and_no_task_fails(client, worker, account):
    """It failed the order's first workflow task in the SDK's JSON decoding, forever."""
    intent_id = f"{account}-deep"
    deep = '{"intent_id": "' + intent_id + '", "account": "' + account + '", "extra": ' + "[" * 3000 + "]" * 3000 + "}"
    handle = await client.start_workflow(ORDER_WORKFLOW, raw_json(deep), id=intent_id, task_queue=TASK_QUEUE, result_type=OrderSnapshot)
    snap = await asyncio.wait_for(finish(handle), timeout=30)
    assert (snap.state, snap.reject_reason) == (OrderState.REJECTED, RejectReason.MALFORMED_INTENT), snap
    assert await task_failures(client, intent_id) == []


@pytest.mark.parametrize("workflow", [RISK_WORKFLOW, SCENARIO_WORKFLOW])
async def test_an_account_or_scenario_input_nested_3000_deep_fails_its_run_with_the_reason(client, worker, workflow):
    workflow_id = f"deep-{workflow}-{os.urandom(4).hex()}"
    queue = account_task_queue(TASK_QUEUE) if workflow == RISK_WORKFLOW else TASK_QUEUE
    handle = await client.start_workflow(workflow, raw_json("[" * 3000 + "]" * 3000), id=workflow_id, task_queue=queue)
    with pytest.raises(WorkflowFailureError) as info:
        await asyncio.wait_for(handle.result(), timeout=30)
    assert str(info.value.cause), "failed without a reason"
    assert await task_failures(client, workflow_id) == []


async def test_a_deep_update_payload_is_refused_and_the_order_goes_on(env, client, worker, config, account):
    await open_account(env, account, config, other=0.0, cancel_cross_probability=0.0)
    order = await submit(client, intent(account, "w1"))
    await wait_state(order, {OrderState.WORKING})
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await order.execute_update(UPDATE_CANCEL, raw_json("[" * 3000 + "]" * 3000))
    assert str(info.value.cause).endswith("payload refused: JSON nested 3,000 levels deep, over the limit of 64"), info.value.cause
    await order.execute_update(UPDATE_CANCEL, {"reason": "USER"})
    assert (await finish(order)).state is OrderState.CANCELED
    assert await task_failures(client, order.id) == [] and await task_failures(client, risk_workflow_id(account)) == []


def test_yaml_depth_is_bounded_before_anything_is_composed():
    with pytest.raises(yaml_safe.YamlError, match="line 1: nested deeper than the limit of 32 levels"):
        yaml_safe.load("session: " + "[" * 20_000 + "]" * 20_000)
    assert yaml_safe.load("a: " + "[" * 31 + "]" * 31) is not None  # the mapping and 31 lists: 32 levels
    with pytest.raises(yaml_safe.YamlError, match="nested deeper"):
        yaml_safe.load("a: " + "[" * 32 + "]" * 32)

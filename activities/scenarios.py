"""Load a scenario (a file in scenarios/ by name, or an inline spec) with its effective config."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.calendar import read_sessions
from config import yaml_safe
from config.load import (
    CONFIG_DIR,
    DEFAULT_RULES,
    DEFAULT_UNIVERSE,
    ConfigError,
    load_rules,
    load_universe,
    read_yaml,
)
from config.text_file import KIB, MIB, InputFileError, read_text
from domain.calendars import CALENDAR_ZONES
from domain.events import MAX_RUN_DAYS, TimedEvent, exposure_event_problem
from domain.marketdata import FeedSource, FeedSpec, GeneratedDay
from domain.pnl import MAX_BOD_CSV_BYTES, BodCsvError, BodPosition, parse_bod_csv
from domain.rules import RigConfig, RiskRules
from domain.sessions import SessionDay, session_hours
from marketdata.files import check_day
from marketdata.schema import MANIFEST_FILE, PRINTS_FILE, QUOTES_FILE
from protocol.contract import next_replacement_id
from protocol.parse import first_error, first_line, printable
from protocol.scenario_plan import ScenarioPlan
from scenarios.evaluate import expand_random_orders
from scenarios.spec import SCENARIO_NAME, ScenarioSpec

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"
# A scenario file is a few KB; its plan comes back as a local activity's result, which Temporal
# caps at 2 MiB (a 50 MB file was retried forever), so both are bounded well below that.
MAX_SCENARIO_FILE_BYTES = 256 * KIB
MAX_PLAN_BYTES = 1 * MIB
DAY_FILES = (MANIFEST_FILE, QUOTES_FILE, PRINTS_FILE)


DEFAULT_MARKET_DATE = date(2026, 6, 15)  # a Monday: a generated market's day when the scenario names none
SCENARIO_MARKET_SCALE = 0.02  # a scenario's generated day: ~8 prints a minute per name, built in a fraction of a second


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def plan_scenario(scenario: str | dict[str, Any]) -> ScenarioPlan:
    """Raises ValueError with a one-line reason for an unknown or invalid scenario."""
    text, data = _read_scenario(scenario) if isinstance(scenario, str) else (None, scenario)
    try:
        spec = ScenarioSpec.model_validate(data)
        if isinstance(scenario, str) and spec.name != scenario:
            raise ValueError(f"scenario {scenario}: name: {spec.name!r} differs from the file's name {scenario!r}")
        base = DEFAULT_RULES if spec.profile is None else CONFIG_DIR / "profiles" / f"{spec.profile}.yaml"
        rules = RiskRules.model_validate(_merge(_merge(read_yaml(base), _calendar_rules(spec)), spec.rules))
        config = RigConfig(rules=rules, universe=load_universe(DEFAULT_UNIVERSE))
        for event in spec.events:  # the same check the inject_exposure update's validator makes
            if event.exposure is None:
                continue
            problem = exposure_event_problem(event.exposure, config)
            if problem:
                raise ValueError(f"scenario {spec.name}: event at {event.at}: {problem}")
        spec = _days(expand_random_orders(spec), rules)
        check_references(spec)
        market, spec = _market(spec)
        bod = _bod(spec, config)
    except ValidationError as err:
        where = yaml_safe.line_of(text, err.errors()[0]["loc"]) if text is not None else None
        line = f"line {where}: " if where is not None else ""
        raise ValueError(f"scenario {_name_of(scenario, data)}: {line}{first_error(err, '')}") from None
    except ConfigError as err:
        raise ValueError(str(err)) from None
    plan = ScenarioPlan(spec=spec.model_copy(update={"events": []}), config=config, market=market, bod=bod, timeline=spec.events)
    size = len(plan.model_dump_json())
    if size > MAX_PLAN_BYTES:
        raise ValueError(
            f"scenario {spec.name}: its plan is {size:,} bytes as JSON, over the limit of {MAX_PLAN_BYTES:,} (fewer events or positions)"
        )
    return plan


def _name_of(scenario: str | dict[str, Any], data: Any) -> str:
    name = scenario if isinstance(scenario, str) else data.get("name", "?") if isinstance(data, dict) else "?"
    return printable(str(name)[:64])


def _read_scenario(name: str) -> tuple[str, Any]:
    """The file scenarios/<name>.yaml, its text and data: the name is a plain file name (no path),
    the file is bounded and safe YAML (config/yaml_safe.py)."""
    if not re.fullmatch(SCENARIO_NAME, name):
        raise ValueError(f"scenario name {name[:60]!r} is not a scenario's name (letters, digits, _ and -; a file in scenarios/)")
    path = inside_scenarios(f"{name}.yaml", name, "name")
    if not path.is_file():
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(scenario_names())}")
    try:
        text = read_text(path, MAX_SCENARIO_FILE_BYTES, shown=path.name)
        return text, yaml_safe.load(text)
    except InputFileError as err:
        raise ValueError(f"scenario {name}: {err}") from None
    except yaml_safe.YamlError as err:
        raise ValueError(f"scenario {name}: {path.name}: {err}") from None


def inside_scenarios(relative: str, scenario: str, field: str) -> Path:
    """`relative` resolved inside scenarios/: no absolute path, no `..`, no link that leads out.
    The refusal names the field only, so it can never show anything of a file."""
    refusal = ValueError(f"scenario {scenario}: {field}: must name a file inside scenarios/ (a relative path, no '..', no link out of the folder)")
    pure = PurePosixPath(relative)
    if not relative or "\0" in relative or "\\" in relative or pure.is_absolute() or ".." in pure.parts:
        raise refusal
    resolved = (SCENARIO_DIR / relative).resolve()
    if not resolved.is_relative_to(SCENARIO_DIR.resolve()):
        raise refusal
    return resolved


def _market(spec: ScenarioSpec) -> tuple[FeedSpec | None, ScenarioSpec]:
    """The feed the scenario names; its day is the account's exchange date."""
    if spec.market is None:
        return None, spec
    if spec.market.file is not None:
        path = inside_scenarios(spec.market.file, spec.name, "market.file")
        for name in DAY_FILES:  # and no file of the day links out either
            inside_scenarios(f"{spec.market.file}/{name}", spec.name, "market.file")
        try:
            day = check_day(path).date  # the files checked now, not mid-run (types, values)
        except ValidationError as err:
            raise ValueError(f"scenario {spec.name}: market file {spec.market.file}: day.json: {first_error(err)}") from None
        except Exception as err:  # noqa: BLE001 — any unreadable market is one line for the user
            raise ValueError(f"scenario {spec.name}: market file {spec.market.file}: {first_line(err)}") from None
        wanted = date.fromisoformat(spec.date) if spec.date else day
        feed = FeedSpec(source=FeedSource.RECORDED, path=str(path), replay_on=wanted if wanted != day else None)
    else:
        wanted = date.fromisoformat(spec.date) if spec.date else DEFAULT_MARKET_DATE
        generate = spec.market.generate
        assert generate is not None
        recipe = GeneratedDay(seed=generate.seed, date=wanted, shocks=tuple(generate.shocks), scale=generate.scale or SCENARIO_MARKET_SCALE)
        feed = FeedSpec(source=FeedSource.GENERATED, generated=recipe)
    return feed, spec.model_copy(update={"date": wanted.isoformat()})


def _bod(spec: ScenarioSpec, config: RigConfig) -> list[BodPosition]:
    if spec.positions is None:
        return []
    if isinstance(spec.positions, list):
        rows = spec.positions
    else:
        path = inside_scenarios(spec.positions, spec.name, "positions")
        try:
            rows = parse_bod_csv(read_text(path, MAX_BOD_CSV_BYTES, shown=spec.positions), config.universe)
        except InputFileError as err:
            raise ValueError(f"scenario {spec.name}: positions: {err}") from None
        except BodCsvError as err:
            raise ValueError(f"scenario {spec.name}: positions {spec.positions}: {err}") from None
    for row in rows:
        if row.symbol not in config.universe.by_symbol:
            raise ValueError(f"scenario {spec.name}: positions: unknown symbol {row.symbol!r}")
    return rows


def check_references(spec: ScenarioSpec) -> None:
    """Every cancel and replace names an order an earlier event defines (a replace defines its
    replacement `<id>.R<n>`), so a scenario can never wait for an order that does not exist."""
    known: set[str] = set()
    for event in sorted(spec.events, key=lambda e: (e.date or "", _hms(e.at))):  # stable: same-time events keep file order
        if event.order is not None:
            if event.order.id in known:
                raise ValueError(f"scenario {spec.name}: event at {event.at}: order id {event.order.id!r} is used twice")
            known.add(event.order.id)
        for action, target in (("cancel", event.cancel), ("replace", event.replace)):
            if target is not None and target.id not in known:
                raise ValueError(f"scenario {spec.name}: event at {event.at}: {action} of {target.id!r}, which no earlier order defines")
        if event.replace is not None:
            known.add(next_replacement_id(event.replace.id))


def _hms(text: str) -> str:
    return text if text.count(":") == 2 else f"{text}:00"


def _calendar_rules(spec: ScenarioSpec) -> dict[str, Any]:
    """A scenario with a calendar: its sessions' own hours (the shipped rules' regimes are anchored
    to the open and close), in the calendar's time zone; the scenario's `rules:` may still set them."""
    if spec.calendar is None:
        return {}
    zone = CALENDAR_ZONES.get(spec.calendar, "UTC")  # an unknown calendar: the rules say so (session.calendar)
    return {"session": {"calendar": spec.calendar, "time_zone": zone, "open": None, "close": None}}


def _days(spec: ScenarioSpec, rules: RiskRules) -> ScenarioSpec:
    """A scenario's days from its calendar: `day: N` and `days: N` as dates, every event dated and
    inside a session (an event on a holiday would wait for the next session's first cycle), every
    cycle expectation dated (the first day's unless it says)."""
    dated = [e for e in spec.events if e.date or e.day] + [x for x in spec.expect if x.date or x.day]
    if spec.calendar is None:
        if dated:
            raise ValueError(f"scenario {spec.name}: dated events and expectations (`day:`, `date:`) need a calendar (calendar: XNYS)")
        return spec
    assert spec.date is not None and rules.session.calendar is not None  # the spec's validator
    first = date.fromisoformat(spec.date)
    window = read_sessions(rules.session.calendar, rules.session.time_zone, first, first + timedelta(days=MAX_RUN_DAYS * 2 + 14))
    sessions = window.sessions
    if not sessions or sessions[0].date != spec.date:
        raise ValueError(f"scenario {spec.name}: {spec.date} has no {spec.calendar} session (a weekend or a holiday): a scenario starts on a session")

    def nth(day: int, what: str) -> str:
        if day > len(sessions):
            raise ValueError(f"scenario {spec.name}: {what}: day {day} is beyond the sessions read ({len(sessions)})")
        return sessions[day - 1].date

    stop_date = spec.stop_date or nth(spec.days or 1, "days")
    if spec.days is not None and spec.stop_date is not None and nth(spec.days, "days") != spec.stop_date:
        raise ValueError(f"scenario {spec.name}: days: {spec.days} ends on {nth(spec.days, 'days')}, stop says {spec.stop_date}")
    if spec.market is not None and stop_date != spec.date:
        raise ValueError(f"scenario {spec.name}: a market spans one day: a scenario over several days has none")
    by_date = {s.date: s for s in sessions}
    events = [_dated_event(e, spec, rules, by_date, nth, stop_date) for e in spec.events]
    expect = [
        x.model_copy(update={"date": nth(x.day, "an expectation") if x.day else x.date or spec.date, "day": None})
        if x.day or x.date or x.at or x.from_
        else x
        for x in spec.expect
    ]
    return spec.model_copy(update={"events": events, "expect": expect, "stop_date": stop_date})


def _dated_event(
    event: TimedEvent, spec: ScenarioSpec, rules: RiskRules, by_date: dict[str, SessionDay], nth: Callable[[int, str], str], stop_date: str
) -> TimedEvent:
    day: str = nth(event.day, f"event at {event.at}") if event.day else event.date or spec.date or ""
    where = f"scenario {spec.name}: event at {day} {event.at}"
    session = by_date.get(day)
    if session is None:
        raise ValueError(f"{where}: no {spec.calendar} session that day (a weekend or a holiday): it would wait for the next session")
    opens, closes = session_hours(rules, session)
    if not opens <= event.at[:5] < closes:
        raise ValueError(f"{where}: outside that day's session ({opens}–{closes})")
    if not spec.date or not spec.date <= day <= stop_date:
        raise ValueError(f"{where}: outside the scenario's days ({spec.date} to {stop_date})")
    return event.model_copy(update={"date": day, "day": None})


@activity.defn
async def load_default_config() -> RigConfig:
    """The worker's rules and universe, for an account opened without its own (the `temporal`
    CLI line): the result is recorded in the account's history, so replay sees the same rules."""
    try:
        return RigConfig(rules=load_rules(DEFAULT_RULES), universe=load_universe(DEFAULT_UNIVERSE))
    except ConfigError as err:
        raise ApplicationError(str(err), type="ConfigError", non_retryable=True) from None


@activity.defn
async def load_scenario(scenario: Any) -> ScenarioPlan:
    try:
        return plan_scenario(scenario)
    except ValueError as err:
        raise ApplicationError(str(err), type="InvalidScenario", non_retryable=True) from None

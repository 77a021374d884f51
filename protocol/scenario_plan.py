"""A scenario as the scenario workflow runs it: the file's spec, the rig's config with its
overrides, the market and the day's book, and the timeline (`activities/scenarios.py` plans it)."""

from __future__ import annotations

from pydantic import Field

from domain.base import Record
from domain.events import TimedEvent
from domain.marketdata import FeedSpec
from domain.pnl import BodPosition
from domain.rules import RigConfig
from scenarios.spec import MAX_PLANNED_EVENTS, ScenarioSpec


class ScenarioPlan(Record):
    spec: ScenarioSpec  # as written (its events moved to `timeline`)
    config: RigConfig
    market: FeedSpec | None = None
    bod: list[BodPosition] = Field(default_factory=list)
    # What the account runs: the events with the random orders expanded (a file's 1,000 events plus
    # up to 500 a day), each dated in a calendar scenario. Empty in plans loaded before it existed.
    timeline: list[TimedEvent] = Field(default=[], max_length=MAX_PLANNED_EVENTS)

"""The decision log as users read it: one row per cycle time.

A quiet stretch (nothing that can change the decision: no open orders, no due events, marks
unchanged, one regime) is stored as one record with `repeats`; these rows are what the skipped
cycles would have decided, recomputed from the stored inputs (only minutes-to-close moves).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.clock import read_clock
from domain.policy import decide
from domain.rules import RiskRules
from protocol.messages import DecisionRecord


def expand(records: list[DecisionRecord], rules: RiskRules, last: int | None = None) -> list[DecisionRecord]:
    """Every row, or only the `last` ones (a live account may have slept through a night)."""
    rows: list[DecisionRecord] = []
    remaining = last
    for record in reversed(records) if last is not None else records:
        first_row = 0 if remaining is None else max(0, record.repeats + 1 - remaining)  # row 0 is the record itself
        start = max(1, first_row)
        part = [record.model_copy(update={"repeats": 0}) if record.repeats else record] if first_row == 0 else []
        base = datetime.strptime(record.exchange_time, "%H:%M:%S")
        for i in range(start, record.repeats + 1):
            at = base + timedelta(seconds=i * rules.risk_cycle.cycle_seconds)
            inputs = record.inputs.model_copy(update={"minutes_to_close": read_clock(at.time(), rules).minutes_to_close})
            part.append(
                record.model_copy(
                    update={
                        "cycle": record.cycle + i,
                        "exchange_time": at.strftime("%H:%M:%S"),
                        "sentence": decide(inputs, rules).sentence,
                        "inputs": inputs,
                        "intents": [],
                        "skipped": [],
                        "repeats": 0,
                    }
                )
            )
        if remaining is None:
            rows.extend(part)
            continue
        rows[:0] = part[-remaining:] if remaining else []
        remaining -= min(remaining, len(part))
        if remaining == 0:
            break
    return rows


def row_count(records: list[DecisionRecord]) -> int:
    return sum(1 + r.repeats for r in records)

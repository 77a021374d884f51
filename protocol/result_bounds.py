"""An account's result kept under Temporal's payload limit (2 MiB).

Each list in a `RiskResult` is bounded (decisions, intents, fills, outcomes, digest items, the
closed days' logs), but together, on an account that worked thousands of orders over a week, they
were not: 2.6 MB, a result the server refuses (the workflow task failed on every retry). Past
`MAX_RESULT_BYTES` the oldest entries of the largest list go first, a half at a time, and the
result says what it left out. A single day's scenario stays far below and is never cut.
"""

from __future__ import annotations

from typing import Any

from protocol.messages import RiskResult

MAX_RESULT_BYTES = 1_500_000  # with room for the envelope under the 2 MiB payload limit
TRIMMED = ("digest_items", "fills", "day_logs", "outcomes", "intents", "decisions", "answers")


def _size(result: RiskResult) -> int:
    return len(result.model_dump_json())


def _halved(items: Any) -> Any:
    """The newer half of a list or an insertion-ordered dict."""
    if isinstance(items, dict):
        keys = list(items)[len(items) // 2 :]
        return {k: items[k] for k in keys}
    return items[len(items) // 2 :]


def bounded_result(result: RiskResult, limit: int = MAX_RESULT_BYTES) -> RiskResult:
    size = _size(result)
    if size <= limit:
        return result
    notes: list[str] = []
    counts = {name: len(getattr(result, name)) for name in TRIMMED}
    while size > limit:
        name = max(TRIMMED, key=lambda n: len(result.model_dump_json(include={n})) if getattr(result, n) else -1)
        items = getattr(result, name)
        if not items:
            break
        result = result.model_copy(update={name: _halved(items) if len(items) > 1 else type(items)()})
        size = _size(result)
    for name in TRIMMED:
        kept = len(getattr(result, name))
        if kept < counts[name]:
            notes.append(f"{name}: the newest {kept:,} of {counts[name]:,}")
    return result.model_copy(update={"trimmed": notes})

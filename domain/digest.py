"""The run digest (DESIGN.md §3): one fingerprint of what a run decided and did.

sha256 over canonical JSON (sorted keys, no whitespace, floats rounded to 6 decimals) of the
decisions (cycle, exchange time, regime, mode, reason, gross, potential), the intents (id,
symbol, side, quantity, price, kind), the fills (id, quantity, price) and the final positions.
Ids are taken relative to the account (scenario accounts get a fresh suffix per run) and fills
are sorted by id, so the digest does not depend on the account name or on the order in which
reports reached the account — only on what happened.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel


class DigestParts(BaseModel):
    decisions: list[dict[str, Any]]
    intents: list[dict[str, Any]]
    fills: list[dict[str, Any]]
    positions: list[dict[str, Any]]
    pnl: dict[str, float] = {}  # the account's realized, unrealized and daily P&L at the end


def _round(value: Any) -> Any:
    if isinstance(value, float):
        rounded = round(value, 6)
        return 0.0 if rounded == 0 else rounded  # -0.0 and 0.0 are one number
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def relative(identifier: str, account: str) -> str:
    return identifier.replace(f"{account}-", "", 1) if identifier.startswith(f"{account}-") else identifier


def canonical(parts: DigestParts) -> str:
    return json.dumps(_round(parts.model_dump()), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(parts: DigestParts) -> str:
    return "sha256:" + hashlib.sha256(canonical(parts).encode()).hexdigest()


def first_difference(expected: DigestParts, observed: DigestParts) -> str | None:
    """The first decision, intent, fill or position that differs, said plainly."""
    if _round(expected.pnl) != _round(observed.pnl):
        first = f"pnl: expected {json.dumps(_round(expected.pnl), sort_keys=True)}, observed {json.dumps(_round(observed.pnl), sort_keys=True)}"
    else:
        first = None
    for name in ("decisions", "intents", "fills", "positions"):
        want, got = _round(getattr(expected, name)), _round(getattr(observed, name))
        for i, (a, b) in enumerate(zip(want, got)):
            if a != b:
                return f"{name}[{i}]: expected {json.dumps(a, sort_keys=True)}, observed {json.dumps(b, sort_keys=True)}"
        if len(want) != len(got):
            extra = want[len(got)] if len(want) > len(got) else got[len(want)]
            return f"{name}: expected {len(want)}, observed {len(got)} (first unmatched: {json.dumps(extra, sort_keys=True)})"
    return first

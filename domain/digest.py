"""The run digest (DESIGN.md §3): one fingerprint of everything a run decided and did.

A running sha256 chain over canonical JSON items (sorted keys, no whitespace, floats rounded to
6 decimals), carried through continue-as-new, so it covers the whole run, not a tail. Items are
added as they become final — a decision, a slept-through quiet stretch, an order's outcome (desk
and rig, with its intent), a fill, a cancel/replace answer, a trading-state change, each
session's roll (a calendar account), and at the end the open orders, positions and P&L — and folded in steps (a risk cycle): within a step they
are sorted, so the order in which reports reached the account inside one cycle does not matter,
only what happened. Ids are relative to the account (scenario accounts get a fresh suffix).

The last `ITEMS_KEPT` items are kept with their sequence numbers, so a mismatch can name the
first differing item of any kind.
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

DIGEST_VERSION = 2
ITEMS_KEPT = 5_000
GENESIS = hashlib.sha256(f"risk-rig run digest v{DIGEST_VERSION}".encode()).hexdigest()


class DigestKind(str, Enum):
    DECISION = "decision"
    QUIET = "quiet"  # cycles slept through with nothing able to change the decision
    ORDER = "order"  # an intent, desk or rig, with its final outcome
    FILL = "fill"
    ANSWER = "answer"  # a cancel's or replace's answer
    TRADING = "trading"  # a trading-state change, with who and why
    FINAL = "final"  # what was still open at the end, final positions and P&L
    ROLL = "roll"  # a session's close: the day's P&L, its closing marks and the next day's book


class DigestItem(BaseModel):
    seq: int
    kind: DigestKind
    body: dict[str, Any]


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        r = round(value, 6)
        return 0.0 if r == 0 else r  # -0.0 and 0.0 are one number
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def canonical(value: Any) -> str:
    return json.dumps(rounded(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def relative(identifier: str, account: str) -> str:
    return identifier.replace(f"{account}-", "", 1) if identifier.startswith(f"{account}-") else identifier


class RunDigest(BaseModel):
    """The running digest an account carries: the chain so far, the items of the step under way,
    and the last items folded."""

    version: int = DIGEST_VERSION
    chain: str = GENESIS
    count: int = 0
    pending: list[tuple[DigestKind, dict[str, Any]]] = Field(default_factory=list)
    log: list[DigestItem] = Field(default_factory=list)

    def add(self, kind: DigestKind, body: dict[str, Any]) -> None:
        self.pending.append((kind, rounded(body)))

    def seal(self) -> None:
        """Fold the step's items into the chain, in canonical order."""
        step = sorted(self.pending, key=lambda item: (item[0].value, canonical(item[1])))
        self.pending = []
        for kind, body in step:
            self.count += 1
            line = canonical([kind.value, body])
            self.chain = hashlib.sha256(f"{self.chain}{line}".encode()).hexdigest()
            self.log.append(DigestItem(seq=self.count, kind=kind, body=body))
        if len(self.log) > ITEMS_KEPT:
            del self.log[: len(self.log) - ITEMS_KEPT]

    @property
    def value(self) -> str:
        return f"sha256:{self.chain}"


def digest_of(items: list[DigestItem]) -> str:
    """The digest of a complete item list (a golden file's), recomputed: it must equal the
    recorded digest, or the file was edited by hand."""
    chain = GENESIS
    for item in items:
        chain = hashlib.sha256(f"{chain}{canonical([item.kind.value, item.body])}".encode()).hexdigest()
    return f"sha256:{chain}"


def _said(item: DigestItem) -> str:
    return f"#{item.seq} {item.kind.value} {canonical(item.body)}"


def first_difference(expected: list[DigestItem], observed: list[DigestItem]) -> str | None:
    """The first item of any kind that differs, said plainly (aligned by sequence number)."""
    by_seq = {i.seq: i for i in observed}
    if expected and observed and expected[0].seq != observed[0].seq:
        start = max(expected[0].seq, observed[0].seq)
        expected = [i for i in expected if i.seq >= start]
        note = f" (items before #{start} are not kept)"
    else:
        note = ""
    for want in expected:
        got = by_seq.get(want.seq)
        if got is None:
            return f"item #{want.seq}: expected {_said(want)}, observed nothing (the run has {len(observed)} items){note}"
        if (got.kind, canonical(got.body)) != (want.kind, canonical(want.body)):
            return f"item #{want.seq}: expected {_said(want)}, observed {_said(got)}{note}"
    if len(observed) > len(expected):
        return f"observed {len(observed) - len(expected)} more items than expected, the first {_said(observed[len(expected)])}{note}"
    return None

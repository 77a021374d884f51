"""The run digest's items, built from what the account records (domain/digest.py defines the chain).

Each builder says what of its component the digest sees; ids are relative to the account.
"""

from __future__ import annotations

from typing import Any

from domain.days import DayRecord
from domain.digest import DigestKind, RunDigest, relative
from domain.ledger import ClosedOrder, FillRecord, Journal, LedgerOrder
from domain.models import Position
from domain.pnl import PnlTotals
from protocol.messages import Answer, DecisionRecord, TradingStateChange


def add_decision(digest: RunDigest, d: DecisionRecord) -> None:
    digest.add(
        DigestKind.DECISION,
        {
            "cycle": d.cycle,
            "time": d.exchange_time,
            "regime": d.regime,
            "mode": d.mode.value,
            "reason": d.reason,
            "gross": d.gross_pct,
            "potential": d.potential_pct,
            "after": d.gross_pct_after,
            "tolerance": d.tolerance_pct,
            "skipped": d.skipped,
        },
    )


def add_quiet(digest: RunDigest, first_cycle: int, cycles: int, until: str) -> None:
    """`cycles` cycle times slept through after the last decision, which they repeat."""
    digest.add(DigestKind.QUIET, {"from_cycle": first_cycle, "cycles": cycles, "until": until})


def _fill(f: FillRecord, account: str) -> dict[str, Any]:
    return {
        "id": relative(f.fill_id, account),
        "order": relative(f.intent_id, account),
        "time": f.exchange_time,
        "symbol": f.symbol,
        "bucket": f.bucket.value,
        "side": f.side.value,
        "quantity": f.quantity,
        "price": f.price,
    }


def _order(closed: ClosedOrder, account: str) -> dict[str, Any]:
    o, i = closed.outcome, closed.intent
    body: dict[str, Any] = {
        "id": relative(o.intent_id, account),
        "state": o.state.value,
        "lost": o.lost_cause,
        "quantity": o.quantity,
        "filled": o.filled_quantity,
        "kind": o.kind.value,
        "reject": o.reject_reason.value if o.reject_reason else None,
        "cancel": o.cancel_reason.value if o.cancel_reason else None,
        "replaced_by": relative(o.replaced_by, account) if o.replaced_by else None,
        "rig": closed.own,
    }
    if i is not None:
        body |= {
            "symbol": i.symbol,
            "bucket": i.bucket.value,
            "side": i.side.value,
            "type": i.order_type.value,
            "price": i.limit_price,
            "reduce_only": i.reduce_only,
            "price_rule": i.price_rule.value,
            "replaces": relative(i.replaces, account) if i.replaces else None,
        }
    return body


def add_journal(digest: RunDigest, journal: Journal, account: str) -> None:
    for f in journal.fills:
        digest.add(DigestKind.FILL, _fill(f, account))
    for closed in journal.closed:
        digest.add(DigestKind.ORDER, _order(closed, account))


def add_answer(digest: RunDigest, answer: Answer, account: str) -> None:
    digest.add(
        DigestKind.ANSWER,
        {
            "action": answer.action,
            "id": relative(answer.intent_id, account),
            "accepted": answer.accepted,
            "refusal": answer.refusal.value if answer.refusal else None,
            "reject": answer.reject_reason.value if answer.reject_reason else None,
            "new_id": relative(answer.new_intent_id, account) if answer.new_intent_id else None,
            "state": answer.state.value if answer.state else None,
        },
    )


def add_trading_change(digest: RunDigest, change: TradingStateChange) -> None:
    digest.add(
        DigestKind.TRADING,
        {
            "state": change.state.value,
            "previous": change.previous.value,
            "freeze": change.freeze,
            "by": change.by,
            "reason": change.reason,
            "cycle": change.cycle,
            "time": change.exchange_time,
        },
    )


def add_final(digest: RunDigest, open_orders: list[LedgerOrder], positions: list[Position], pnl: PnlTotals | None, account: str) -> None:
    """The end of the run: orders still open (with their state), positions and P&L."""
    digest.add(
        DigestKind.FINAL,
        {
            "open": sorted([relative(o.intent_id, account), o.state.value, o.filled] for o in open_orders if not o.synthetic),
            "positions": sorted([p.symbol, p.bucket.value, p.quantity] for p in positions if p.quantity),
            "pnl": pnl.shown() if pnl is not None else {},  # costs only when non-zero: earlier digests stay equal
        },
    )


def add_roll(digest: RunDigest, day: DayRecord) -> None:
    """A session's close (the daily roll): the day's P&L, its closing marks and the next day's book."""
    digest.add(
        DigestKind.ROLL,
        {
            "date": day.date,
            "close": day.close,
            "pnl": day.pnl.shown(),
            "marks": dict(sorted(day.marks.items())),
            "bod": sorted([b.symbol, b.bucket.value, b.quantity, b.mark] for b in day.bod_next),
            "expired": day.expired,
            "trading": day.trading_state.value,
        },
    )

"""The run digest of an account's result (domain/digest.py defines the fingerprint)."""

from __future__ import annotations

from domain.digest import DigestParts, digest, relative
from domain.ledger import FillRecord
from domain.models import Position
from domain.pnl import PnlTotals
from protocol.messages import DecisionRecord, IntentRecord


def digest_parts(
    account: str,
    decisions: list[DecisionRecord],
    intents: list[IntentRecord],
    fills: list[FillRecord],
    positions: list[Position],
    pnl: PnlTotals | None = None,
) -> DigestParts:
    return DigestParts(
        decisions=[
            {
                "cycle": d.cycle,
                "exchange_time": d.exchange_time,
                "regime": d.regime,
                "mode": d.mode.value,
                "reason": d.reason,
                "gross_pct": d.gross_pct,
                "potential_pct": d.potential_pct,
            }
            for d in decisions
        ],
        intents=[
            {
                "id": relative(r.intent.intent_id, account),
                "symbol": r.intent.symbol,
                "side": r.intent.side.value,
                "quantity": r.intent.quantity,
                "price": r.intent.limit_price,
                "kind": r.intent.kind.value,
            }
            for r in intents
        ],
        fills=sorted(({"id": relative(f.fill_id, account), "quantity": f.quantity, "price": f.price} for f in fills), key=lambda f: f["id"]),
        positions=[
            {"symbol": p.symbol, "bucket": p.bucket.value, "quantity": p.quantity}
            for p in sorted(positions, key=lambda p: (p.symbol, p.bucket.value))
            if p.quantity
        ],
        pnl=pnl.model_dump() if pnl is not None else {},
    )


def run_digest(
    account: str,
    decisions: list[DecisionRecord],
    intents: list[IntentRecord],
    fills: list[FillRecord],
    positions: list[Position],
    pnl: PnlTotals | None = None,
) -> str:
    return digest(digest_parts(account, decisions, intents, fills, positions, pnl))

"""The account's book: positions, open orders, applied fills and order outcomes. Pure.

The risk workflow owns one Ledger and feeds it what it learns about orders — reports from the
orders themselves, results of its own activities, reconciliation from the server — in any
order and any number of times: every fill id is applied once, an order's filled quantity never
goes back, a terminal state absorbs, and a closed order's potential is released at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from pydantic import Field, field_validator

from domain.base import Record
from domain.costs import CostError, CostSchedule, cost_of_fill, sim_liquidity
from domain.enums import (
    Bucket,
    IntentKind,
    OrderState,
    OrderType,
    RejectReason,
    Side,
)
from domain.models import Fill, Intent, OpenOrder, Position, PositionKey, book_keys, position_key
from domain.order import OrderOutcome, OrderReport
from domain.pnl import BodPosition, DayPnl, PnlBook

T = TypeVar("T")
FILL_IDS_KEPT = 20_000
OUTCOMES_KEPT = 2_000
FILLS_KEPT = 2_000


# Open states in lifecycle order: reports may arrive late, state only moves forward — but a
# pending cancel or replace may be refused and the order work on, so those move both ways.
_OPEN_RANK = {
    OrderState.ACCEPTED: 0, OrderState.WORKING: 1, OrderState.PENDING_CANCEL: 1, OrderState.PENDING_REPLACE: 1, OrderState.PARTIAL_FILL: 2,
}  # fmt: skip
_LIVE = (OrderState.WORKING, OrderState.PARTIAL_FILL, OrderState.PENDING_CANCEL, OrderState.PENDING_REPLACE)


def keep_last(items: list[T], item: T, kept: int) -> None:
    """Append, dropping the oldest beyond `kept`: what the account carries stays bounded."""
    items.append(item)
    if len(items) > kept:
        del items[: len(items) - kept]


def _summed(key: PositionKey, footprints: list[OpenOrder]) -> list[OpenOrder]:
    sums: dict[tuple[Side, IntentKind, bool], int] = {}
    for f in footprints:
        group = (f.side, f.kind, f.reduce_only)
        sums[group] = sums.get(group, 0) + f.remaining
    return [
        OpenOrder(
            intent_id=f"Σ{key[0]}|{key[1].value}|{side.value}|{kind.value}|{'RO' if ro else 'ANY'}",
            symbol=key[0],
            bucket=key[1],
            side=side,
            remaining=total,
            kind=kind,
            reduce_only=ro,
        )
        for (side, kind, ro), total in sums.items()
    ]


class LedgerOrder(Record):
    """An order the account tracks while it is open (synthetic resting orders included)."""

    intent: Intent | None = None  # None only for a synthetic resting order
    footprint: OpenOrder  # what potential exposure sees; `remaining` follows the fills
    state: OrderState = OrderState.ACCEPTED
    filled: int = 0
    own: bool = False  # the risk cycle's own de-risk intent: coverage, repriced on escalation
    synthetic: bool = False
    heard_cycle: int = 0  # the last cycle the account heard from (or about) this order
    expires_at: str = ""  # exchange-local ISO datetime of the close that ends this DAY order
    replacement: str | None = None  # a replace in progress: the replacement's reserved id
    costed_shares: int = 0  # the shares and notional of its fills so far, for the commission's
    costed_notional: float = 0.0  # per-order minimum and caps (domain/costs.py)

    @property
    def intent_id(self) -> str:
        return self.footprint.intent_id

    @property
    def live(self) -> bool:
        """Worked by a venue (not synthetic, acknowledged, not closed)."""
        return not self.synthetic and self.state in _LIVE


class FillRecord(Record):
    """A fill as the account applied it, stamped with the cycle's exchange time."""

    cycle: int
    exchange_time: str
    fill_id: str
    intent_id: str
    symbol: str
    bucket: Bucket
    side: Side
    quantity: int
    price: float

    def as_fill(self) -> Fill:
        return Fill(
            fill_id=self.fill_id,
            intent_id=self.intent_id,
            symbol=self.symbol,
            bucket=self.bucket,
            side=self.side,
            quantity=self.quantity,
            price=self.price,
        )


class ClosedOrder(Record):
    """An order's final outcome with the intent it was for (None: refused before it parsed)."""

    outcome: OrderOutcome
    intent: Intent | None = None
    own: bool = False


class Journal(Record):
    """What became final since the account last took it (the run digest's items)."""

    fills: list[FillRecord] = Field(default_factory=list)
    closed: list[ClosedOrder] = Field(default_factory=list)


class BookState(Record):
    """What the ledger carries across continue-as-new (bounded at every cap)."""

    equity: float
    positions: dict[str, Position] = Field(default_factory=dict)  # by `position_key`
    pnl: PnlBook = Field(default_factory=PnlBook)  # cost basis (average cost) since the beginning of the day
    open_orders: dict[str, LedgerOrder] = Field(default_factory=dict)
    outcomes: dict[str, OrderOutcome] = Field(default_factory=dict)
    applied_fill_ids: list[str] = Field(default_factory=list)
    fills: list[FillRecord] = Field(default_factory=list)
    journal: Journal = Field(default_factory=Journal)  # taken by the account every cycle

    _book_keys = field_validator("positions", mode="before")(book_keys)  # a book carried with the old keys


ZERO_COSTS = CostSchedule()


class Ledger:
    def __init__(self, state: BookState) -> None:
        self.s = state
        # What fills cost (the rules' `costs`: configuration, set by the account, not carried) and
        # whether the simulated venue matches where the market data is (the fills' liquidity flag;
        # asked only when the schedule charges something).
        self.costs = ZERO_COSTS
        self.matched_at_the_data: Callable[[], bool] = lambda: False
        # Whether fills are costed at all (the account's patch, asked at the first fill with a cost:
        # runs recorded before costs were booked replay without them, loss rows as they were).
        self.costs_booked: Callable[[], bool] = lambda: True
        self._applied = dict.fromkeys(state.applied_fill_ids)
        # Open orders by (symbol, bucket), and their footprints summed per (side, kind, reduce-only):
        # what exposure, pre-trade and the planner read costs O(positions), not O(open orders) —
        # an account works thousands of orders and judges each new one against all of them.
        self._by_key: dict[PositionKey, dict[str, None]] = {}
        self._sums: dict[PositionKey, list[OpenOrder]] = {}
        for entry in state.open_orders.values():
            self._by_key.setdefault(entry.footprint.key, {})[entry.intent_id] = None

    # ── reading ──────────────────────────────────────────────────────────────────────────────
    @property
    def equity(self) -> float:
        return self.s.equity

    @property
    def pnl(self) -> PnlBook:
        return self.s.pnl

    def positions(self) -> list[Position]:
        return list(self.s.positions.values())

    def position(self, key: PositionKey) -> int:
        held = self.s.positions.get(position_key(*key))
        return held.quantity if held else 0

    def position_sizes(self) -> dict[PositionKey, int]:
        """Each position's absolute size, by (symbol, bucket)."""
        return {(p.symbol, p.bucket): abs(p.quantity) for p in self.s.positions.values()}

    def open_order(self, intent_id: str) -> LedgerOrder | None:
        return self.s.open_orders.get(intent_id)

    def open_orders(self) -> list[LedgerOrder]:
        return list(self.s.open_orders.values())

    def open_count(self) -> int:
        return len(self.s.open_orders)

    def outcome(self, intent_id: str) -> OrderOutcome | None:
        return self.s.outcomes.get(intent_id)

    def outcomes(self) -> dict[str, OrderOutcome]:
        return self.s.outcomes

    def lost(self) -> list[OrderOutcome]:
        return [o for o in self.s.outcomes.values() if o.lost_cause]

    def fills(self) -> list[FillRecord]:
        return self.s.fills

    def footprints(self, excluding: str | None = None) -> list[OpenOrder]:
        """The open orders' footprints summed per (symbol, bucket, side, kind, reduce-only), without
        the order `excluding` (a replace is judged instead of its original)."""
        skip = self.s.open_orders[excluding].footprint.key if excluding in self.s.open_orders else None
        summed: list[OpenOrder] = []
        for key in self._by_key:
            if key == skip:
                summed += _summed(key, [self.s.open_orders[i].footprint for i in self._by_key[key] if i != excluding])
            else:
                if key not in self._sums:
                    self._sums[key] = _summed(key, [self.s.open_orders[i].footprint for i in self._by_key[key]])
                summed += self._sums[key]
        return summed

    def state_counts(self) -> dict[OrderState, int]:
        counts: dict[OrderState, int] = {}
        for entry in self.s.open_orders.values():
            counts[entry.state] = counts.get(entry.state, 0) + 1
        return counts

    def order_keys(self) -> list[PositionKey]:
        return list(self._by_key)

    def live_orders(self) -> list[LedgerOrder]:
        return [o for o in self.s.open_orders.values() if o.live]

    def knows(self, intent_id: str) -> bool:
        return intent_id in self.s.open_orders or intent_id in self.s.outcomes

    def fills_of(self, intent_id: str) -> list[Fill]:
        return [f.as_fill() for f in self.s.fills if f.intent_id == intent_id]

    def take_journal(self) -> Journal:
        """The fills applied and the orders closed since the last call."""
        journal, self.s.journal = self.s.journal, Journal()
        return journal

    def carried(self) -> BookState:
        self.s.applied_fill_ids = list(self._applied)[-FILL_IDS_KEPT:]
        return self.s

    def close_day(self, close_marks: Mapping[str, float]) -> DayPnl:
        """The daily roll at a session's close: the day's P&L fixed at these marks, and the next
        day's beginning-of-day book = the closing positions at them (domain/pnl.py `close_day`)."""
        self.s.pnl, day = self.s.pnl.close_day(close_marks)
        return day

    def replace_book(self, rows: list[BodPosition]) -> None:
        """A book set from outside (beginning of day, a test account's injected exposure):
        positions with their cost basis, as if held since the beginning of the day."""
        self.s.positions = {position_key(r.symbol, r.bucket): Position(symbol=r.symbol, bucket=r.bucket, quantity=r.quantity) for r in rows}
        self.s.pnl = PnlBook.from_bod(rows)
        for key in list(self._by_key):
            self._fit_reduce_only(key)

    # ── orders ───────────────────────────────────────────────────────────────────────────────
    def set_equity(self, equity: float) -> None:
        self.s.equity = equity

    def start_replacing(self, original_id: str, replacement_id: str) -> None:
        """A replace in progress: the original's reserved replacement (dropped if it never happens)."""
        self.s.open_orders[original_id].replacement = replacement_id

    def shrink_reserved(self, intent_id: str, quantity: int) -> bool:
        """A reserved order not yet at the venue asks for less (a replacement sized from what its
        original filled before the cancel): its reservation shrinks; it never grows."""
        entry = self.s.open_orders.get(intent_id)
        if (
            entry is None
            or entry.intent is None
            or entry.state is not OrderState.ACCEPTED
            or entry.filled
            or not 0 < quantity < entry.intent.quantity
        ):
            return False
        entry.intent = entry.intent.model_copy(update={"quantity": quantity})
        self._sums.pop(entry.footprint.key, None)
        self._fit_reduce_only(entry.footprint.key)
        return True

    def reserve(self, intent: Intent, *, own: bool, cycle: int, expires_at: str) -> LedgerOrder:
        entry = LedgerOrder(
            intent=intent,
            own=own,
            heard_cycle=cycle,
            expires_at=expires_at,
            footprint=OpenOrder(
                intent_id=intent.intent_id,
                symbol=intent.symbol,
                bucket=intent.bucket,
                side=intent.side,
                remaining=intent.quantity,
                kind=intent.kind,
                reduce_only=intent.reduce_only,
                limit_price=intent.limit_price,
            ),
        )
        self.s.open_orders[intent.intent_id] = entry
        self._indexed(entry)
        return entry

    def _indexed(self, entry: LedgerOrder) -> None:
        self._by_key.setdefault(entry.footprint.key, {})[entry.intent_id] = None
        self._sums.pop(entry.footprint.key, None)

    def _unindexed(self, entry: LedgerOrder) -> None:
        key = entry.footprint.key
        self._by_key.get(key, {}).pop(entry.intent_id, None)
        if not self._by_key.get(key):
            self._by_key.pop(key, None)
        self._sums.pop(key, None)

    def add_resting(self, order: OpenOrder) -> None:
        """A synthetic resting order (scenario/test accounts): potential only, never worked."""
        self.s.open_orders[order.intent_id] = entry = LedgerOrder(footprint=order, state=OrderState.WORKING, synthetic=True)
        self._indexed(entry)

    def drop_synthetic(self) -> None:
        for intent_id in [i for i, o in self.s.open_orders.items() if o.synthetic]:
            self._drop(intent_id)

    def record_refusal(self, intent: Intent | None, intent_id: str, reason: RejectReason, message: str) -> None:
        """A pre-trade refusal: the order ends REJECTED without ever being open."""
        self._close(
            OrderOutcome(
                intent_id=intent_id,
                state=OrderState.REJECTED,
                quantity=intent.quantity if intent else 0,
                filled_quantity=0,
                kind=intent.kind if intent else IntentKind.NEW,
                reject_reason=reason,
                reject_message=message,
            ),
            intent,
        )

    def apply_report(self, report: OrderReport, *, cycle: int, exchange_time: str) -> int:
        """Apply what an order says of itself; returns how many new fills were applied. A report
        about an order this account never knew, or fills that are not that order's, change nothing."""
        if not self.knows(report.intent_id) or not self._fills_fit(report):
            return 0
        if report.lost_cause:
            before = len(self._applied)
            self.mark_lost(report.intent_id, report.lost_cause, report.fills, cycle=cycle, exchange_time=exchange_time)
            return len(self._applied) - before
        applied = sum(self._apply_reported(f, report.fills, cycle=cycle, exchange_time=exchange_time) for f in report.fills)
        entry = self.s.open_orders.get(report.intent_id)
        if entry is None:
            return applied  # closed already (or never ours): fills above still count, once
        entry.heard_cycle = max(entry.heard_cycle, cycle)
        if report.state.is_terminal:
            self._close(
                OrderOutcome(
                    intent_id=report.intent_id,
                    state=report.state,
                    quantity=report.quantity,
                    filled_quantity=max(entry.filled, report.filled_quantity),
                    kind=entry.footprint.kind,
                    reject_reason=report.reject_reason,
                    reject_message=report.reject_message,
                    cancel_reason=report.cancel_reason,
                    replaced_by=report.replaced_by,
                )
            )
            if entry.replacement and not report.replaced_by:
                self._drop(entry.replacement)  # the replace did not happen
            return applied
        rank, held = _OPEN_RANK[report.state], _OPEN_RANK[entry.state]
        if rank > held or (rank == held and report.state is not entry.state):
            entry.state = report.state  # a late, older report never takes an order back
        if report.released is not None and report.released == entry.replacement:
            self._drop(entry.replacement)  # a refused replace: its reserved replacement will not be placed
            entry.replacement = None
        self._set_filled(entry, report.filled_quantity)
        return applied

    def mark_lost(self, intent_id: str, cause: str, fills: Iterable[Fill], *, cycle: int, exchange_time: str) -> bool:
        """An order that went away or silent: apply the fills it recorded, release its potential."""
        for fill in fills:
            self.apply_fill(fill, cycle=cycle, exchange_time=exchange_time)
        entry = self.s.open_orders.get(intent_id)
        if entry is None:
            return False
        self._close(
            OrderOutcome(
                intent_id=intent_id,
                state=entry.state,
                quantity=entry.intent.quantity if entry.intent else entry.footprint.remaining,
                filled_quantity=entry.filled,
                kind=entry.footprint.kind,
                lost_cause=cause,
            )
        )
        if entry.replacement:
            self._drop(entry.replacement)
        return True

    def _fills_fit(self, report: OrderReport) -> bool:
        """Each fill is the reporting order's own, on its symbol, bucket and side, and together
        they do not exceed what the order was for."""
        entry = self.s.open_orders.get(report.intent_id)
        intent = entry.intent if entry is not None else None
        limit = intent.quantity if intent else self.s.outcomes[report.intent_id].quantity if report.intent_id in self.s.outcomes else 0
        corrected = {f.corrects for f in report.fills if f.corrects}
        if sum(f.quantity for f in report.fills if f.fill_id not in corrected) > limit:
            return False
        return all(
            f.intent_id == report.intent_id
            and f.quantity > 0
            and (intent is None or (f.symbol, f.bucket, f.side) == (intent.symbol, intent.bucket, intent.side))
            for f in report.fills
        )

    def _set_filled(self, entry: LedgerOrder, filled: int) -> None:
        entry.filled = max(entry.filled, filled)
        self._fit_reduce_only(entry.footprint.key)

    def _fit_reduce_only(self, key: PositionKey) -> None:
        """Each open order's footprint is what it may still fill. A reduce-only order (the desk's,
        or the cycle's own de-risk intent) may fill only what the position still holds on its
        side — other fills can shrink the position after pre-trade admitted it — and the venue
        step cuts its fills the same way (venues/sim/model.py `within_position`). Earlier orders keep
        their place; what cannot fill counts for nothing in potential exposure."""
        position = self.s.positions.get(position_key(*key))
        held = position.quantity if position else 0
        room = {Side.SELL: max(0, held), Side.BUY: max(0, -held)}
        self._sums.pop(key, None)
        for intent_id in self._by_key.get(key, {}):
            entry = self.s.open_orders[intent_id]
            if entry.synthetic or entry.intent is None:
                continue
            left = max(0, entry.intent.quantity - entry.filled)
            if entry.footprint.reduce_only or entry.footprint.kind.is_derisk:
                left = min(left, room[entry.footprint.side])
                room[entry.footprint.side] -= left
            entry.footprint.remaining = left

    def _drop(self, intent_id: str) -> None:
        entry = self.s.open_orders.pop(intent_id, None)
        if entry is not None:
            self._unindexed(entry)

    def _close(self, outcome: OrderOutcome, intent: Intent | None = None) -> None:
        entry = self.s.open_orders.get(outcome.intent_id)
        own = entry is not None and entry.own
        if entry is not None and entry.intent is not None:
            intent = entry.intent
        self.s.journal.closed.append(ClosedOrder(outcome=outcome, intent=intent, own=own))
        self._drop(outcome.intent_id)
        self.s.outcomes.pop(outcome.intent_id, None)  # re-inserted last: newest at the end
        self.s.outcomes[outcome.intent_id] = outcome
        while len(self.s.outcomes) > OUTCOMES_KEPT:
            del self.s.outcomes[next(iter(self.s.outcomes))]

    # ── fills ────────────────────────────────────────────────────────────────────────────────
    def _cost(self, fill: Fill, entry: LedgerOrder | None) -> float:
        """What this fill cost: the broker's reported figure when it gave one, else the schedule
        (nothing to compute with the shipped, all-zero schedule)."""
        if (self.costs == ZERO_COSTS and fill.commission is None) or not self.costs_booked():
            return 0.0
        intent = entry.intent if entry is not None else None
        market_order = intent is not None and intent.order_type is OrderType.MARKET
        at_the_data = self.costs != ZERO_COSTS and self.matched_at_the_data()
        try:
            return cost_of_fill(
                fill.quantity,
                fill.price,
                fill.side,
                sim_liquidity(fill.fill_id, market_order=market_order, at_the_data=at_the_data),
                self.costs,
                order_shares_before=entry.costed_shares if entry is not None else 0,
                order_notional_before=entry.costed_notional if entry is not None else 0.0,
                broker_commission=fill.commission,
            ).total
        except CostError:
            return 0.0  # an absurd fill: the book refuses it next (PnlBook.apply_fill)

    def _apply_reported(self, fill: Fill, reported: list[Fill], *, cycle: int, exchange_time: str) -> bool:
        """A fill as an order reports it; a correction first takes back the fill it corrects (an
        opposite fill at that fill's price, once), so position and P&L hold the corrected one."""
        if fill.corrects is not None and fill.fill_id not in self._applied and fill.corrects in self._applied:
            original = next((f for f in reported if f.fill_id == fill.corrects), None)
            if original is not None:
                reversal = original.model_copy(update={"fill_id": f"{original.fill_id}~corrected", "side": original.side.opposite, "corrects": None})
                self.apply_fill(reversal, cycle=cycle, exchange_time=exchange_time, fills_order=False)
        return self.apply_fill(fill, cycle=cycle, exchange_time=exchange_time, fills_order=fill.corrects is None)

    def apply_fill(self, fill: Fill, *, cycle: int, exchange_time: str, fills_order: bool = True) -> bool:
        """Book a fill once (by its id). `fills_order`: it adds to its order's filled quantity (a
        correction's reversal and the correction itself do not: the order reports its own)."""
        if fill.fill_id in self._applied:
            return False
        entry = self.s.open_orders.get(fill.intent_id)
        charged = fills_order or fill.corrects is not None  # a correction's reversal costs nothing
        cost = self._cost(fill, entry) if charged else 0.0
        self.s.pnl = self.s.pnl.apply_fill(fill, cost)  # first: it refuses an absurd fill before anything changes
        if entry is not None and charged:
            entry.costed_shares += fill.quantity
            entry.costed_notional += fill.quantity * fill.price
        self._applied[fill.fill_id] = None
        if len(self._applied) > FILL_IDS_KEPT * 2:  # trim in bulk: amortized O(1)
            self._applied = dict.fromkeys(list(self._applied)[-FILL_IDS_KEPT:])
        key = position_key(fill.symbol, fill.bucket)
        held = self.s.positions.get(key)
        self.s.positions[key] = Position(symbol=fill.symbol, bucket=fill.bucket, quantity=(held.quantity if held else 0) + fill.signed_quantity)
        self._fit_reduce_only((fill.symbol, fill.bucket))
        record = FillRecord(
            cycle=cycle,
            exchange_time=exchange_time,
            fill_id=fill.fill_id,
            intent_id=fill.intent_id,
            symbol=fill.symbol,
            bucket=fill.bucket,
            side=fill.side,
            quantity=fill.quantity,
            price=fill.price,
        )
        keep_last(self.s.fills, record, FILLS_KEPT)
        self.s.journal.fills.append(record)
        entry = self.s.open_orders.get(fill.intent_id)
        if entry is not None and fills_order:
            self._set_filled(entry, entry.filled + fill.quantity)
        return True

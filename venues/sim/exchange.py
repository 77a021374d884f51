"""The simulated exchange an account owns: what it knows of one order (its `SimOrder`), an order's
arrival, the risk cycle's step for every live order, and — with market data — where each live
order stands (when it arrived, the displayed shares still ahead of it). Deterministic and pure
(the account's workflow runs it); the fill model is `venues/sim/model.py`.

Without market data the account runs an order's arrival with its pre-trade verdict and each
cycle's matching step here (the mode probabilities). With market data the matching runs where the
data is (`venues/sim/exchange_step.py`, a local activity the account's market part calls): this
class gives it the live orders with their places and keeps what comes back — the places, and the
executions the cycle's step then delivers. An order asks the model directly only for what it does
on its own — a replacement's arrival, a cancel, a replace's pre-check (venues/sim/activities.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from domain.enums import OrderType, RiskMode
from domain.execution import ExecKind, ExecutionEvent
from domain.ledger import LedgerOrder
from domain.marketdata import L1, MarketView, Print
from domain.matching import Resting, arrive
from domain.models import Intent, PositionKey, Quote
from domain.rules import RigConfig
from protocol.account_state import AtExchange, ExchangeState
from venues.sim import model
from venues.sim.exchange_step import ExchangeOrder, OrderOutcome
from venues.sim.model import SimOrder, VenueParams


class Turn(NamedTuple):
    """One live order's turn at the exchange this cycle."""

    order: SimOrder
    closed: bool  # its DAY ended: it expires
    # Runs recorded before the exchange step (replay): the prints since the last cycle.
    prints: Sequence[Print] = ()
    since: datetime | None = None


class Matched(NamedTuple):
    intent_id: str
    events: list[ExecutionEvent]


class SimExchange:
    def __init__(
        self,
        seed: int,
        config: Callable[[], RigConfig],
        quote: Callable[[str], Quote],
        view: Callable[[str], MarketView | None],
        state: ExchangeState | None = None,
    ) -> None:
        self._seed = seed
        self._config = config
        self._quote = quote
        self._view = view
        self._s = state if state is not None else ExchangeState()
        self._matched: dict[str, list[ExecutionEvent]] | None = None  # the cycle's executions from the data, until its step
        self._asked: list[str] = []  # the orders in the cycle's exchange step

    def params(self, kind_mode: RiskMode) -> VenueParams:
        """The fill model's parameters for an order issued in `kind_mode`."""
        fills = self._config().rules.fills
        return VenueParams(
            seed=self._seed,
            fill_probability=fills.probability(kind_mode),
            partial_fill_probability=fills.partial_fill_probability,
            cancel_cross_probability=fills.cancel_cross_probability,
        )

    def lot(self, symbol: str) -> int:
        return self._config().universe.by_symbol[symbol].lot_size

    def order(self, intent: Intent, cum_qty: int = 0, position: int | None = None, with_market: bool = True) -> SimOrder:
        """What the exchange knows of one order now (`with_market` False: without the symbol's
        view — the exchange step reads the market where the data is)."""
        market = self._view(intent.symbol) if with_market else None
        return SimOrder(
            intent=intent,
            cum_qty=cum_qty,
            lot_size=self.lot(intent.symbol),
            params=self.params(intent.issued_in_mode),
            quote=self._quote(intent.symbol),
            market=market,
            market_rule=self._config().rules.market_data if market is not None else None,
            position=position,
        )

    def arrive(self, order: SimOrder) -> list[ExecutionEvent]:
        """Acknowledge (or refuse) and the arrival's matching attempt, on the order's own quote
        (the simulated feed; runs recorded before the exchange step: the order's view)."""
        return model.submit(order)

    # ── with market data: where each live order stands ───────────────────────────────────────
    def arrived(self, intent_id: str, at: datetime, resting: Resting | None) -> None:
        """An order met the market at `at` and rests with `resting` ahead of it (None: it does not
        rest — refused, filled, or a MARKET order, which takes the next touch)."""
        self._s.orders[intent_id] = AtExchange(ahead=resting.ahead if resting else 0, arrived_at=at.isoformat())

    def placed_by_order(self, intent: Intent, at: datetime) -> None:
        """A replacement its order places itself (venues/sim/activities.py) against the view the
        account gave it: its queue place from that view's L1, as the order's arrival met it."""
        view = self._view(intent.symbol)
        self.arrived(intent.intent_id, at, _place(intent, view.l1 if view else None))

    def working(self, orders: Iterable[LedgerOrder], since: datetime) -> list[ExchangeOrder]:
        """The exchange step's orders: each with its arrival and place. One the account has no
        place for (it went live in a run before the exchange step) is taken as arrived at `since`
        behind the size displayed at its price now."""
        out = []
        for entry in orders:
            intent = entry.intent
            if intent is None:
                continue
            at = self._s.orders.get(intent.intent_id)
            if at is None:
                view = self._view(intent.symbol)
                self.arrived(intent.intent_id, since, _place(intent, view.l1 if view else None))
                at = self._s.orders[intent.intent_id]
            arrived = datetime.fromisoformat(at.arrived_at) if at.arrived_at else since
            order = self.order(intent, cum_qty=entry.filled, with_market=False)
            out.append(ExchangeOrder(order=order, arrived_at=arrived, resting=Resting(ahead=at.ahead)))
        self._asked = [o.order.intent.intent_id for o in out]
        return out

    def took(self, outcomes: Iterable[OrderOutcome]) -> None:
        """The cycle's exchange step came back: keep the places (an arrival the window has run past
        is needed no more); its executions wait for `step`."""
        self._matched = {}
        for intent_id in self._asked:
            if (asked := self._s.orders.get(intent_id)) is not None:
                asked.arrived_at = None
        self._asked = []
        for outcome in outcomes:
            at = self._s.orders.get(outcome.intent_id)
            if at is not None and outcome.resting is not None:
                at.ahead = outcome.resting.ahead
            if outcome.events:
                self._matched[outcome.intent_id] = outcome.events

    def prune(self, open_ids: Iterable[str]) -> None:
        """Only open orders keep a place."""
        keep = set(open_ids)
        for intent_id in [i for i in self._s.orders if i not in keep]:
            del self._s.orders[intent_id]

    # ── the cycle's step ─────────────────────────────────────────────────────────────────────
    def step(self, turns: list[Turn], cycle: int, held: Mapping[PositionKey, int]) -> list[Matched]:
        """One matching attempt (or the expiry at the close) for each live order, in turn order —
        with market data, the executions the cycle's exchange step found; a reduce-only order's
        fills stop at the position earlier turns' fills leave."""
        matched, self._matched = self._matched, None
        positions = dict(held)
        out = []
        for turn in turns:
            intent = turn.order.intent
            if turn.closed or matched is None:
                events = model.match(turn.order, cycle, turn.closed, turn.prints, turn.since)
            else:
                events = matched.get(intent.intent_id, [])
            events = model.within_position(events, intent, positions.get(intent.key, 0))
            positions[intent.key] = positions.get(intent.key, 0) + intent.side.sign * sum(e.last_qty for e in events if e.kind is ExecKind.FILL)
            if events:
                out.append(Matched(intent.intent_id, events))
        return out


def _place(intent: Intent, l1: L1 | None) -> Resting:
    """A resting order's place from the L1 its arrival met (a MARKET order never rests)."""
    if intent.order_type is not OrderType.LIMIT or intent.limit_price is None:
        return Resting()
    return arrive(intent.side, intent.limit_price, intent.quantity, 1, l1).resting or Resting()

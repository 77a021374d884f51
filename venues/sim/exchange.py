"""The simulated exchange an account owns: what it knows of one order (its `SimOrder`), an order's
arrival, and the risk cycle's matching step for every live order. Deterministic and pure (the
account's workflow runs it); the fill model is `venues/sim/model.py`.

The account runs an order's arrival with its pre-trade verdict (one round trip for the order) and
each cycle's step; an order asks the same model directly only for what it does on its own — a
replacement's arrival, a cancel, a replace's pre-check (venues/sim/activities.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import NamedTuple

from domain.enums import RiskMode
from domain.execution import ExecKind, ExecutionEvent
from domain.marketdata import MarketView, Print
from domain.models import Intent, PositionKey, Quote
from domain.rules import RigConfig
from venues.sim import model
from venues.sim.model import SimOrder, VenueParams


class Turn(NamedTuple):
    """One live order's turn at the exchange this cycle."""

    order: SimOrder
    closed: bool  # its DAY ended: it expires
    prints: list[Print]  # with market data: the prints since the last cycle
    since: datetime | None


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
    ) -> None:
        self._seed = seed
        self._config = config
        self._quote = quote
        self._view = view

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

    def order(self, intent: Intent, cum_qty: int = 0, position: int | None = None) -> SimOrder:
        """What the exchange knows of one order now."""
        market = self._view(intent.symbol)
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
        """Acknowledge (or refuse) and the arrival's matching attempt."""
        return model.submit(order)

    def step(self, turns: list[Turn], cycle: int, held: Mapping[PositionKey, int]) -> list[Matched]:
        """One matching attempt (or the expiry at the close) for each live order, in turn order;
        a reduce-only order's fills stop at the position earlier turns' fills leave."""
        positions = dict(held)
        matched = []
        for turn in turns:
            intent = turn.order.intent
            events = model.match(turn.order, cycle, turn.closed, turn.prints, turn.since)
            events = model.within_position(events, intent, positions.get(intent.key, 0))
            positions[intent.key] = positions.get(intent.key, 0) + intent.side.sign * sum(e.last_qty for e in events if e.kind is ExecKind.FILL)
            if events:
                matched.append(Matched(intent.intent_id, events))
        return matched

"""Pre-trade controls besides exposure (DESIGN.md §3; rules `controls`), one check per control. Pure.

Each check returns None (passes) or a `Refusal` — (reject code, message naming the limit and the
numbers). By family:
  - `orders`: one order on its own — restricted list, max quantity, price collar, max position, quote
    sanity, price band, the MARKET collar, size vs ADV, notional per symbol, self-cross, max notional;
  - `lookback`: over rolling windows of workflow time — order rate, duplicates, message rate, the
    order-to-trade alarm, the repeated-execution throttle (their bounded `ControlsState`);
  - `rig`: the rig's own orders (`check_rig_order`).

`check_controls` runs every desk control in a fixed order; a replacement goes through the same
(`check_replacement`). The caller has validated the intent's shape (side, whole quantity > 0, finite
limit); numbers are still bounded before any arithmetic, and a reference a control needs but cannot
trust refuses with that control's code: a control fails closed.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.controls.base import MAX_QUANTITY, OrderTicket, Refusal, TopOfBook, top_of_book
from domain.controls.lookback import (
    CONTROLS,
    MAX_RECENT_ORDERS,
    ControlAlarm,
    ControlsState,
    MessageKind,
    Throttle,
    check_duplicate,
    check_message,
    check_message_rate,
    check_order_rate,
    order_to_trade_alarm,
    record_fill,
    record_message,
    record_order,
)
from domain.controls.orders import (
    check_adv_share,
    check_market_collar,
    check_max_notional,
    check_max_order_quantity,
    check_max_position,
    check_price_band,
    check_price_collar,
    check_quote,
    check_restricted,
    check_self_cross,
    check_symbol_notional,
    crosses,
)
from domain.controls.rig import RigOrder, check_rig_order, clip_rig_quantity
from domain.models import OpenOrder
from domain.rules import ControlsRule

__all__ = [
    "CONTROLS",
    "MAX_QUANTITY",
    "MAX_RECENT_ORDERS",
    "ControlAlarm",
    "ControlsState",
    "MessageKind",
    "OrderTicket",
    "Refusal",
    "RigOrder",
    "Throttle",
    "TopOfBook",
    "check_adv_share",
    "check_controls",
    "check_duplicate",
    "check_market_collar",
    "check_max_notional",
    "check_max_order_quantity",
    "check_max_position",
    "check_message",
    "check_message_rate",
    "check_order_rate",
    "check_price_band",
    "check_price_collar",
    "check_quote",
    "check_replacement",
    "check_restricted",
    "check_rig_order",
    "check_self_cross",
    "check_symbol_notional",
    "clip_rig_quantity",
    "crosses",
    "order_to_trade_alarm",
    "record_fill",
    "record_message",
    "record_order",
    "top_of_book",
]


def check_controls(
    order: OrderTicket,
    *,
    intended_duplicate: bool,
    truth_tick: float | None,
    position: int,
    open_same_side: int,
    mark: float,
    equity: float,
    state: ControlsState,
    rule: ControlsRule,
    top: TopOfBook | None = None,
    l1_max_age_seconds: float = 60.0,
    adv: int = 0,
    resting: Sequence[OpenOrder] = (),
    kind: MessageKind = MessageKind.NEW,
) -> tuple[Refusal | None, ControlsState]:
    """Every desk control in a fixed order — restricted list, max order quantity, size vs ADV, quote
    sanity, price collar (LIMIT vs the truth tick; MARKET vs the far touch), price band, max position,
    notional per symbol, self-cross, duplicative order, order rate, message rate — stopping at the
    first refusal. Returns it and the pruned state (record the order with `record_order` once it is
    approved). `top`: the symbol's L1 now (its age at the check); `adv`: the instrument's ADV;
    `resting`: the account's open orders (desk and rig). A control that is on and lacks its input
    refuses; with a control off its input is not read."""
    rate_refusal, times = check_order_rate(order.at, state.order_times, rule.order_rate)
    duplicate_refusal, recent = check_duplicate(order, state.recent_orders, rule.duplicative_orders, intended_duplicate=intended_duplicate)
    message_refusal, pruned = check_message(
        kind, order.at, state.model_copy(update={"order_times": times, "recent_orders": recent}), rule.message_rate
    )
    refusal = (
        check_restricted(order.symbol, rule.restricted)
        or check_max_order_quantity(order.symbol, order.quantity, rule.max_order_quantity)
        or check_adv_share(order.symbol, order.quantity, adv, rule.adv_share)
        or (check_quote(top, l1_max_age_seconds) if rule.quote_sanity.enabled else None)
        or check_price_collar(order.limit_price, truth_tick, rule.price_collar)
        or check_market_collar(order.side, order.limit_price, top, truth_tick, l1_max_age_seconds, rule.market_collar)
        or check_price_band(order.limit_price, top, l1_max_age_seconds, rule.price_band)
        or check_max_position(
            order.symbol,
            order.side,
            order.quantity,
            position=position,
            open_same_side=open_same_side,
            mark=mark,
            equity=equity,
            rule=rule.max_position,
        )
        or check_symbol_notional(
            order.symbol, order.side, order.quantity, position=position, open_same_side=open_same_side, mark=mark, rule=rule.symbol_notional
        )
        or check_self_cross(order.symbol, order.side, order.limit_price, resting, rule.self_cross)
        or duplicate_refusal
        or rate_refusal
        or message_refusal
    )
    return refusal, pruned


def check_replacement(
    order: OrderTicket,
    *,
    truth_tick: float | None,
    position: int,
    open_same_side: int,
    mark: float,
    equity: float,
    state: ControlsState,
    rule: ControlsRule,
    top: TopOfBook | None = None,
    l1_max_age_seconds: float = 60.0,
    adv: int = 0,
    resting: Sequence[OpenOrder] = (),
) -> tuple[Refusal | None, ControlsState]:
    """A desk replace is a new order for the controls (FIX: the replacement is checked in full): the
    same checks, the duplicate guard and the order and message rates included. The caller leaves the
    order being replaced out of `open_same_side` and `resting`; a replacement that repeats an order of
    the window (e.g. one that changes nothing) is DUPLICATIVE_ORDER. Record it with `record_order` once
    approved."""
    return check_controls(
        order,
        intended_duplicate=False,
        truth_tick=truth_tick,
        position=position,
        open_same_side=open_same_side,
        mark=mark,
        equity=equity,
        state=state,
        rule=rule,
        top=top,
        l1_max_age_seconds=l1_max_age_seconds,
        adv=adv,
        resting=resting,
        kind=MessageKind.REPLACE,
    )

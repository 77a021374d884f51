"""The account's pre-trade rate with the firm's limits on, beside the same without, in the same run.

An account judges its orders one at a time (domain/gate.py `gate_desk_intent`, what each `pretrade`
update runs): its judgments per second bound the orders per second it can take. The firm adds no
round trip — each account holds an allocation of the firm's limits and judges against it
(domain/firm.py `check_firm_order`, as workflows/account/firm.py calls it) — so the firm's cost is
one more pass over the book per order. Measured on one book (positions in every universe symbol,
2,000 open orders), the same intents, shipped rules and then the production profile's controls.
"""

from __future__ import annotations

import random
import statistics
import time

from config.load import CONFIG_DIR, load_config
from domain.enums import Bucket, IntentKind, Regime, RiskMode, Side
from domain.firm import Amounts, check_firm_order
from domain.gate import GateContext, gate_desk_intent
from domain.ledger import BookState, Ledger
from domain.market import quote_from_mark
from domain.models import Intent, OpenOrder, Position, position_key
from domain.rules import RigConfig

OPEN_ORDERS = 2_000
JUDGMENTS = 2_000
ROUNDS = 5
ACCOUNT = "bench"


def _book(config: RigConfig, seed: int = 7) -> Ledger:
    rng = random.Random(seed)
    symbols = [i.symbol for i in config.universe.instruments]
    ledger = Ledger(BookState(equity=50_000_000.0))
    for symbol in symbols:
        ledger.s.positions[position_key(symbol, Bucket.LT)] = Position(symbol=symbol, bucket=Bucket.LT, quantity=rng.randint(100, 2_000))
    for i in range(OPEN_ORDERS):
        symbol, side = rng.choice(symbols), rng.choice(list(Side))
        intent = Intent(
            intent_id=f"{ACCOUNT}-o{i}", account=ACCOUNT, symbol=symbol, bucket=Bucket.LT, side=side,
            quantity=rng.randint(1, 50), limit_price=99.0 if side is Side.BUY else 101.0,  # resting, not self-crossing a buy at 100
        )  # fmt: skip
        ledger.reserve(intent, own=False, cycle=1, expires_at="")
    return ledger


def _context(config: RigConfig, ledger: Ledger, firm: bool) -> GateContext:
    quotes = {i.symbol: quote_from_mark(100.0) for i in config.universe.instruments}
    allocation = Amounts(gross=10**12, credit=10**12)

    def firm_check(intent: Intent, replacing: str | None) -> tuple | None:
        order = OpenOrder(
            intent_id=intent.intent_id, symbol=intent.symbol, bucket=intent.bucket, side=intent.side, remaining=intent.quantity,
            kind=IntentKind.NEW, limit_price=intent.limit_price,
        )  # fmt: skip
        marks = {s: quotes[s].truth_tick for s in quotes}
        return check_firm_order(ledger.positions(), ledger.footprints(excluding=replacing), marks, order, allocation)

    return GateContext(
        account=ACCOUNT, ledger=ledger, mode=RiskMode.NORMAL, regime=Regime.MID, quote_of=quotes.__getitem__, config=config,
        wired=True, firm_check=firm_check if firm else None,
    )  # fmt: skip


def _round(config: RigConfig, ledger: Ledger, raws: list[dict], firm: bool) -> tuple[float, int]:
    """One pass: seconds for every judgment, and how many were approved."""
    ctx = _context(config, ledger, firm)
    start = time.perf_counter()
    approved = sum(gate_desk_intent(raw, ctx).approved for raw in raws)
    return time.perf_counter() - start, approved


def _rates(config: RigConfig) -> tuple[float, float, int, int]:
    """Judgments/s without and with the firm, rounds alternating so load on the machine hits both."""
    ledger = _book(config)
    symbols = [i.symbol for i in config.universe.instruments]
    raws = [
        {"intent_id": f"{ACCOUNT}-n{i}", "account": ACCOUNT, "symbol": symbols[i % len(symbols)], "side": "BUY", "quantity": 10, "limit_price": 100.0}
        for i in range(JUDGMENTS)
    ]
    times: dict[bool, list[float]] = {False: [], True: []}
    approved = {False: 0, True: 0}
    for _ in range(ROUNDS):
        for firm in (False, True):
            seconds, approved[firm] = _round(config, ledger, raws, firm)
            times[firm].append(seconds)
    return JUDGMENTS / statistics.median(times[False]), JUDGMENTS / statistics.median(times[True]), approved[False], approved[True]


def run() -> dict[str, float]:
    shipped = load_config()
    production = load_config(CONFIG_DIR / "profiles" / "production.yaml")
    production = production.model_copy(  # no rate limits: the bench sends 2,000 orders in a burst on purpose
        update={
            "rules": production.rules.model_copy(
                update={
                    "controls": production.rules.controls.model_copy(
                        update={
                            "order_rate": shipped.rules.controls.order_rate,
                            "message_rate": shipped.rules.controls.message_rate,
                            "duplicative_orders": shipped.rules.controls.duplicative_orders,
                        }
                    )
                }
            )
        }
    )
    figures: dict[str, float] = {}
    print(f"pre-trade: judgments/s of one account, {OPEN_ORDERS:,} open orders, {JUDGMENTS:,} desk orders (median of {ROUNDS})")
    for label, config in (("shipped rules", shipped), ("production controls", production)):
        without, with_firm, ok_without, ok_with = _rates(config)
        figures[f"{label} without firm"], figures[f"{label} with firm"] = without, with_firm
        print(
            f"  {label:<20} without the firm {without:9,.0f}/s ({ok_without:,} approved)   "
            f"with firm limits {with_firm:9,.0f}/s ({ok_with:,} approved)   ratio {with_firm / without:.2f}"
        )
    return figures


if __name__ == "__main__":
    run()

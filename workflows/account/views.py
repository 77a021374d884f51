"""What the account says about itself: the state query's view, the run's result (the digest
sealed with the final book) and the UI's details line after each cycle — read from the parts,
never changing them (but for sealing the digest at the end)."""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.clock import read_clock
    from domain.ledger import Ledger
    from domain.rules import RigConfig
    from protocol import run_digest
    from protocol.account_state import AccountState
    from protocol.decision_log import expand
    from protocol.messages import DecisionRecord, RiskInput, RiskResult, RiskView
    from protocol.result_bounds import bounded_result
    from workflows.account.clock import AccountClock
    from workflows.account.cycle import AccountCycle
    from workflows.account.day import AccountDay
    from workflows.account.market import AccountMarket
    from workflows.account.operator import AccountOperator
    from workflows.account.orders import AccountOrders

OPEN_ORDERS_SHOWN = 500  # the state query lists this many (an account may work thousands); the count is exact


class AccountViews:
    def __init__(
        self,
        inp: Callable[[], RiskInput],
        config: Callable[[], RigConfig],
        state: AccountState,
        clock: AccountClock,
        cycle: AccountCycle,
        market: AccountMarket,
        ledger: Ledger,
        operator: AccountOperator,
        day: AccountDay,
        orders: AccountOrders,
    ) -> None:
        self._inp, self._config, self._state = inp, config, state
        self._clock, self._cycle, self._market, self._ledger = clock, cycle, market, ledger
        self._operator, self._day, self._orders = operator, day, orders

    def state(self) -> RiskView:
        """The state query's answer."""
        now = self._clock.now()
        rules = self._clock.day_rules(now)
        recent = expand(self._cycle.decisions(), rules, last=20)
        return RiskView(
            account=self._inp().account,
            synthetic=self._inp().synthetic,
            venue=self._inp().venue,
            cycle=self._cycle.number,
            exchange_time=now.isoformat(),
            regime=read_clock(now.time(), rules).regime.value,
            mode=self._cycle.mode,
            trading_state=self._operator.trading_state,
            frozen=self._operator.frozen,
            trading_changes=self._operator.changes(last=20),
            pnl=self._market.pnl(),
            marks=self._market.mark_views(),
            last_decision=recent[-1] if recent else None,
            exposure=self._market.exposure(),
            positions=self._ledger.positions(),
            open_orders=self._ledger.open_orders()[:OPEN_ORDERS_SHOWN],
            open_order_count=self._ledger.open_count(),
            open_order_states=self._ledger.state_counts(),
            lost=self._ledger.lost(),
            alarms=self._operator.alarms(),
            divergences=self._operator.divergences(),
            recent_decisions=recent,
            session=self._clock.view(self._day.session),
            days=self._day.days(),
            firm=self._inp().firm,
            firm_allocation=self._state.firm.allocation.allocation if self._state.firm.granted else None,
        )

    def result(self) -> RiskResult:
        """The run's result: the digest sealed with the final book (call once, at the end)."""
        positions = self._ledger.positions()
        digest, account = self._state.cycle.digest, self._inp().account
        run_digest.add_journal(digest, self._ledger.take_journal(), account)
        run_digest.add_final(digest, self._ledger.open_orders(), positions, self._market.pnl().account, account)
        digest.seal()
        return bounded_result(
            RiskResult(
                account=account,
                decisions=expand(self._cycle.decisions(), self._clock.day_rules()),
                intents=self._cycle.intents(),
                outcomes=self._ledger.outcomes(),
                fills=self._ledger.fills(),
                answers=self._orders.answers(),
                trading_changes=self._operator.changes(),
                pnl=self._market.pnl().account,
                price_path=self._market.price_path(),
                hard_cap_pct=self._config().rules.hard_cap_pct,
                final_exposure=self._market.exposure(),
                positions=positions,
                digest=digest.value,
                digest_items=digest.log,
                days=self._day.days(),
                day_logs=self._day.logs(),
                cycle_seconds=self._config().rules.risk_cycle.cycle_seconds,
            )
        )

    def details(self, record: DecisionRecord) -> str:
        """The UI's details line after a cycle."""
        lost = len(self._ledger.lost())
        pnl = record.pnl
        return (
            f"**{record.mode.value}** ({record.reason.value}) at {record.exchange_time} {record.regime.value}\n\n"
            f"gross {record.gross_pct:.2f}% → {record.gross_pct_after:.2f}% "
            f"(tolerance {record.tolerance_pct:g}%), potential {record.potential_pct:.2f}%; "
            f"{self._ledger.open_count()} open orders"
            + (f", {lost} lost" if lost else "")
            + f"; cycle {record.cycle}\n\n"
            + (f"P&L today {pnl.daily:,.2f} (realized {pnl.realized:,.2f}, unrealized {pnl.unrealized:,.2f}); " if pnl else "")
            + f"trading state **{self._operator.trading_state.value}**"
            + (" (de-risk frozen)" if self._operator.frozen else "")
        )

"""The account's membership of its firm (RiskInput.firm; workflows/firm.py): the allocation of the
firm's limits it holds, its pre-trade against it, and once a cycle its usage reported to the firm.

No order waits on the firm: each order is judged here against the allocation (domain/firm.py
`check_firm_order`: FIRM_GROSS_LIMIT, FIRM_CREDIT_LIMIT; an order that raises neither passes). Once a
cycle the account reports its usage (an activity, `report_to_firm`, deadline ~10 s) and takes the
grant, gives back what the firm reclaims and it does not use, and halts when the firm is HALTED. A
report that fails or finds no firm keeps the allocation as it was. Until the first grant the
allocation is zero: new risk is refused FIRM_*.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.firm_calls import FirmCalls, firm_reason
    from domain.enums import TradingState
    from domain.events import TradingStateRequest
    from domain.firm import FirmGrant, Refusal, Usage, UsageReport, check_firm_order, usage_of
    from domain.ledger import Ledger
    from domain.models import Intent, OpenOrder
    from protocol.account_state import FirmMembership
    from protocol.firm_messages import ReportToFirm
    from workflows.account.market import AccountMarket
    from workflows.account.operator import AccountOperator

REPORT_TIMEOUT = timedelta(seconds=10)
REPORT_RETRY = RetryPolicy(maximum_attempts=1)  # the next cycle reports again


class AccountFirm:
    def __init__(
        self, account: str, firm: str | None, state: FirmMembership, ledger: Ledger, market: AccountMarket, operator: AccountOperator
    ) -> None:
        self._account = account
        self.firm = firm
        self._s = state
        self._ledger = ledger
        self._market = market
        self._operator = operator

    @property
    def waiting_for_grant(self) -> bool:
        """A member without its first grant yet: its cycles keep reporting (no quiet sleep)."""
        return self.firm is not None and not self._s.granted

    def _marks(self, extra: str | None = None) -> dict[str, float]:
        symbols = dict.fromkeys([p.symbol for p in self._ledger.positions()] + [s for s, _ in self._ledger.order_keys()] + ([extra] if extra else []))
        return {s: self._market.quote(s).truth_tick for s in symbols}

    def usage(self) -> Usage:
        return usage_of(self._ledger.positions(), self._ledger.footprints(), self._marks())

    def refusal(self, intent: Intent, excluding: str | None = None) -> Refusal | None:
        """A desk order (or a replacement, without the order it replaces) against this account's
        allocation of the firm's limits. No firm: None."""
        if self.firm is None:
            return None
        order = OpenOrder(
            intent_id=intent.intent_id, symbol=intent.symbol, bucket=intent.bucket, side=intent.side, remaining=intent.quantity,
            kind=intent.kind, reduce_only=intent.reduce_only, limit_price=intent.limit_price,
        )  # fmt: skip
        refused = check_firm_order(
            self._ledger.positions(), self._ledger.footprints(excluding=excluding), self._marks(intent.symbol), order, self._s.allocation.allocation
        )
        if refused is not None and not self._s.granted:
            return refused[0], f"no allocation from firm {self.firm} yet (its first grant comes with this account's first report): {refused[1]}"
        return refused

    def report_of(self) -> tuple[UsageReport, Usage]:
        """This cycle's report: usage at the marks, the cumulative counters."""
        usage = self.usage()
        held = self._s.allocation
        return UsageReport(account=self._account, usage=usage, released=held.released, granted_seen=held.granted_seen), usage

    def take(self, grant: FirmGrant, usage: Usage) -> None:
        """The firm's answer: its cumulative grant (a stale one changes nothing), and what it reclaims
        given back — never what the account uses."""
        held = self._s.allocation.take_grant(grant.granted)
        if grant.reclaim_to is not None:
            held = held.give_back(usage, grant.reclaim_to)
        self._s.allocation, self._s.granted = held, True

    async def report(self, cycle: int, stamp: str) -> None:
        """The cycle's usage report; the grant taken, a reclaim given back, the firm's halt obeyed."""
        if self.firm is None:
            return
        report, usage = self.report_of()
        try:
            grant = await workflow.execute_activity_method(
                FirmCalls.report_to_firm,
                ReportToFirm(firm=self.firm, report=report),
                start_to_close_timeout=REPORT_TIMEOUT,
                retry_policy=REPORT_RETRY,
            )
        except ActivityError as err:
            workflow.logger.warning("firm %s did not answer the usage report (%s): allocation kept", self.firm, err.cause or err)
            return
        if grant is None:
            return  # no firm running: the allocation stays
        self.take(grant, usage)
        if grant.halted and self._operator.trading_state is not TradingState.HALTED:
            reason = firm_reason(self.firm, "halt", "the firm is HALTED (seen in its grant)")
            self._operator.set_trading_state(TradingStateRequest(state=TradingState.HALTED, by=f"firm {self.firm}", reason=reason), cycle, stamp)

"""One contract suite for every venue: run a sequence of venue commands against any venue
harness and get back what the venue said, then check the seam's invariants.

A harness adapts one venue (the rig's simulated venue, the IBKR gateway over a fake TWS, …):

    class VenueHarness(Protocol):
        name: str
        async def submit(self, cmd: Submit) -> list[ExecutionEvent]        # the venue's direct answer
        async def cancel(self, intent_id: str) -> list[ExecutionEvent]
        async def order_status(self, intent_id: str) -> VenueOrderStatus
        async def executions_since(self, cursor: str | None) -> list[ExecutionEvent]
        async def venue_fill(self, intent_id: str, quantity: int, price: float) -> None  # the market trades
        async def venue_cancel(self, intent_id: str) -> None                # the venue ends it on its own
        async def settle(self) -> list[ExecutionEvent]                     # pushed events since the last settle

`run_venue_commands(harness, commands)` plays the commands in order; after each it settles the
harness, so `ContractRun.events` is everything the venue told the rig (direct answers and
pushed events, in order), `ContractRun.replies` pairs each command with its direct answer.
`contract_violations(run, quantities)` lists broken seam rules (empty = good); `outcome(run)`
gives each intent's (terminal kind or None, cum_qty) for comparing venues with each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from domain.execution import ExecKind, ExecutionEvent, VenueOrderStatus

TERMINAL_KINDS = (ExecKind.CANCELED, ExecKind.REJECTED, ExecKind.EXPIRED)


@dataclass(frozen=True)
class Submit:
    intent_id: str
    symbol: str
    side: str  # BUY / SELL
    quantity: int
    limit_price: float | None = None
    order_type: str = "LIMIT"  # LIMIT / MARKET
    account: str = "contract"


@dataclass(frozen=True)
class Cancel:
    intent_id: str


@dataclass(frozen=True)
class VenueFill:
    """The market executes `quantity` of the order at `price` (venue side)."""

    intent_id: str
    quantity: int
    price: float


@dataclass(frozen=True)
class VenueCancel:
    """The venue ends the order on its own (DAY expiry, a desk user in TWS)."""

    intent_id: str


@dataclass(frozen=True)
class QueryStatus:
    intent_id: str


@dataclass(frozen=True)
class ExecutionsSince:
    cursor: str | None = None


Command = Submit | Cancel | VenueFill | VenueCancel | QueryStatus | ExecutionsSince


class VenueHarness(Protocol):
    name: str

    async def submit(self, cmd: Submit) -> list[ExecutionEvent]: ...
    async def cancel(self, intent_id: str) -> list[ExecutionEvent]: ...
    async def order_status(self, intent_id: str) -> VenueOrderStatus: ...
    async def executions_since(self, cursor: str | None) -> list[ExecutionEvent]: ...
    async def venue_fill(self, intent_id: str, quantity: int, price: float) -> None: ...
    async def venue_cancel(self, intent_id: str) -> None: ...
    async def settle(self) -> list[ExecutionEvent]: ...


@dataclass
class ContractRun:
    venue: str
    events: list[ExecutionEvent] = field(default_factory=list)
    replies: list[tuple[Command, object]] = field(default_factory=list)

    def for_intent(self, intent_id: str) -> list[ExecutionEvent]:
        return [e for e in self.events if e.intent_id == intent_id]


async def run_venue_commands(harness: VenueHarness, commands: list[Command]) -> ContractRun:
    run = ContractRun(venue=harness.name)
    for cmd in commands:
        reply: object
        if isinstance(cmd, Submit):
            reply = await harness.submit(cmd)
            run.events += reply
        elif isinstance(cmd, Cancel):
            reply = await harness.cancel(cmd.intent_id)
            run.events += reply
        elif isinstance(cmd, VenueFill):
            await harness.venue_fill(cmd.intent_id, cmd.quantity, cmd.price)
            reply = None
        elif isinstance(cmd, VenueCancel):
            await harness.venue_cancel(cmd.intent_id)
            reply = None
        elif isinstance(cmd, QueryStatus):
            reply = await harness.order_status(cmd.intent_id)
        elif isinstance(cmd, ExecutionsSince):
            reply = await harness.executions_since(cmd.cursor)
        else:
            raise TypeError(f"not a venue command: {cmd!r}")
        run.replies.append((cmd, reply))
        run.events += await harness.settle()
    return run


EXECUTION_KINDS = (ExecKind.FILL, ExecKind.CORRECTION)


def applied(events: list[ExecutionEvent]) -> list[ExecutionEvent]:
    """What a consumer keeps: each exec id once, an event repeated verbatim (a retried call's
    answer, a redelivery) once."""
    seen_fills: set[str] = set()
    seen: list[ExecutionEvent] = []
    for event in events:
        if event.kind in EXECUTION_KINDS:
            if event.exec_id in seen_fills:
                continue
            seen_fills.add(event.exec_id or "")
        elif event in seen:
            continue
        seen.append(event)
    return seen


def executed(events: list[ExecutionEvent]) -> int:
    """The shares an intent's (applied) FILL and CORRECTION events add up to."""
    shares: dict[str, int] = {}
    for event in events:
        if event.kind is ExecKind.FILL:
            shares[event.exec_id or ""] = event.last_qty
        elif event.kind is ExecKind.CORRECTION and event.corrects in shares:
            shares[event.exec_id or ""] = event.last_qty
            del shares[event.corrects]
    return sum(shares.values())


def contract_violations(run: ContractRun, quantities: dict[str, int]) -> list[str]:
    """The seam's rules, per intent (quantities: intent → ordered quantity)."""
    problems: list[str] = []
    all_fills: dict[str, ExecutionEvent] = {}
    for event in run.events:
        if event.kind in EXECUTION_KINDS:
            if not event.exec_id:
                problems.append(f"{event.intent_id}: a {event.kind.value} without exec_id")
            elif event.exec_id in all_fills and all_fills[event.exec_id].model_copy(update={"commission": None}) != event.model_copy(
                update={"commission": None}
            ):
                problems.append(f"{event.intent_id}: exec id {event.exec_id} reported twice with different content")
            all_fills.setdefault(event.exec_id or "", event)
    for intent in dict.fromkeys(e.intent_id for e in run.events):
        events = applied(run.for_intent(intent))
        quantity = quantities.get(intent)
        cum = 0
        ended: ExecutionEvent | None = None
        acknowledged = False
        for n, event in enumerate(events):
            if event.kind is ExecKind.CORRECTION:
                cum = executed(events[: n + 1])
                if event.corrects is None or event.cum_qty != cum:
                    problems.append(
                        f"{intent}: CORRECTION {event.exec_id} of {event.corrects} says cum_qty {event.cum_qty}, the executions add up to {cum}"
                    )
                continue
            if event.kind is ExecKind.FILL:
                if not acknowledged and ended is None:
                    problems.append(f"{intent}: FILL {event.exec_id} before ACCEPTED")
                if event.last_qty <= 0:
                    problems.append(f"{intent}: FILL {event.exec_id} of {event.last_qty}")
                cum += event.last_qty
                if event.cum_qty != cum:
                    problems.append(f"{intent}: FILL {event.exec_id} says cum_qty {event.cum_qty}, the fills add up to {cum}")
                if quantity is not None and event.leaves_qty + event.cum_qty > quantity:
                    problems.append(f"{intent}: leaves {event.leaves_qty} + cum {event.cum_qty} > quantity {quantity}")
                if quantity is not None and cum >= quantity and ended is None:
                    ended = event
                continue
            if event.cum_qty < cum:
                problems.append(f"{intent}: {event.kind.value} takes cum_qty back from {cum} to {event.cum_qty}")
            if event.kind is ExecKind.ACCEPTED:
                acknowledged = True
            if ended is not None and event != ended:
                if not (event.kind is ended.kind and event.kind in TERMINAL_KINDS):
                    problems.append(f"{intent}: {event.kind.value} after the order ended ({ended.kind.value})")
            if event.kind in TERMINAL_KINDS:
                if event.leaves_qty:
                    problems.append(f"{intent}: {event.kind.value} with leaves_qty {event.leaves_qty}")
                ended = ended or event
                acknowledged = True
    return problems


def outcome(run: ContractRun) -> dict[str, tuple[ExecKind | None, int]]:
    """Per intent: how it ended (CANCELED / REJECTED / EXPIRED / FILL when filled / None) and cum_qty."""
    result: dict[str, tuple[ExecKind | None, int]] = {}
    for intent in dict.fromkeys(e.intent_id for e in run.events):
        events = applied(run.for_intent(intent))
        cum = executed(events)
        last = None
        for event in events:
            if event.kind in TERMINAL_KINDS or event.kind is ExecKind.UNKNOWN_ORDER:
                last = last if last in TERMINAL_KINDS else event.kind
            elif event.kind is ExecKind.FILL and event.leaves_qty == 0 and last is None:
                last = ExecKind.FILL
        result[intent] = (last, cum)
    return result


Expected = dict[str, tuple[set[ExecKind], int]]  # intent → (acceptable final kinds, cum_qty)

# Command scripts every venue must pass, with their outcomes (outcome(): FILL = completely filled).
STANDARD_SCRIPTS: dict[str, tuple[list[Command], Expected]] = {
    "fill_in_parts": (
        [Submit("cf1", "AAPL", "BUY", 300, 190.0), VenueFill("cf1", 100, 190.0), VenueFill("cf1", 200, 189.99)],
        {"cf1": ({ExecKind.FILL}, 300)},
    ),
    "cancel_after_a_partial_fill": (
        [Submit("cc1", "MSFT", "SELL", 200, 420.0), VenueFill("cc1", 50, 420.0), Cancel("cc1"), QueryStatus("cc1")],
        {"cc1": ({ExecKind.CANCELED}, 50)},
    ),
    "venue_ends_the_order": ([Submit("ce1", "KO", "SELL", 100, 62.0), VenueCancel("ce1")], {"ce1": ({ExecKind.CANCELED, ExecKind.EXPIRED}, 0)}),
    "cancel_too_late": ([Submit("ct1", "XOM", "BUY", 100, 110.0), VenueFill("ct1", 100, 110.0), Cancel("ct1")], {"ct1": ({ExecKind.FILL}, 100)}),
    "cancel_twice": ([Submit("ci1", "JPM", "SELL", 100, 198.0), Cancel("ci1"), Cancel("ci1")], {"ci1": ({ExecKind.CANCELED}, 0)}),
    "submit_twice": (
        [Submit("cs1", "PG", "BUY", 100, 168.0), Submit("cs1", "PG", "BUY", 100, 168.0), VenueFill("cs1", 100, 168.0), ExecutionsSince(None)],
        {"cs1": ({ExecKind.FILL}, 100)},
    ),
    "unknown_order": ([Cancel("cu1"), QueryStatus("cu1")], {"cu1": ({ExecKind.UNKNOWN_ORDER}, 0)}),
}


def check_script(run: ContractRun, expected: Expected) -> list[str]:
    """Compare a run's outcome with a script's expectations (empty = as expected)."""
    got = outcome(run)
    problems = []
    for intent, (final_kinds, cum) in expected.items():
        final, got_cum = got.get(intent, (None, 0))
        if final not in final_kinds or got_cum != cum:
            problems.append(
                f"{run.venue}: {intent} ended {final.value if final else None} with cum_qty {got_cum}, "
                f"expected {sorted(k.value for k in final_kinds)} with {cum}"
            )
    return problems

"""Replaying scenario files of TWS callbacks through the gateway over a fake TWS, and the IBKR
side of the venue contract suite (`IbkrFakeHarness`).

A scenario file (JSON, one per race, tests/ibkr/):

    {"race": "…", "description": "…", "handling": "what the rig does",
     "tws": {"next_valid_id": 1, "auto_ack": true, "auto_cancel": true},
     "gateway": {"ack_timeout": 0.3, "stuck_after": 30},
     "broker_orders": [{"intent_id": "old-7", "symbol": "AAPL", "side": "BUY", "quantity": 100,
                        "limit_price": 190.0, "status": "Cancelled", "client_id": 17, "order_id": 7}],
     "steps": [ …one of the step forms below… ]}

Steps (after each one the fake's socket drains and the gateway's outbox is delivered):

    {"submit": {"intent_id": "a1", "symbol": "AAPL", "side": "BUY", "quantity": 100, "limit_price": 190.0},
     "on_place": [callback specs], "returns": ["ACCEPTED", …]}
    {"cancel": "a1", "on_cancel": [callback specs], "returns": [...]}
    {"tws": [callback specs]}                 TWS says these now (see testkit/ibkr/tws.py)
    {"while_down": [callback specs]}          the broker's book changes; nobody hears it
    {"unheard": [callback specs]}             the same while connected: a message lost on the way
    {"drop_connection": true, "down": true}   the socket closes (TWS / IB Gateway restarts)
    {"tws_up": true}                          TWS answers again; waits for the gateway to reconnect
    {"stop_gateway": true} / {"start_gateway": true}   the rig's gateway process stops / starts (same state dir)
    {"advance": 31}                           the gateway's clock moves (seconds)
    {"close_day": true} / {"next_day": true}  the session closes (IB expires DAY orders) / IB's nightly restart
    {"link_lost": 1100} / {"link_restored": 1102}   TWS loses / regains IB's servers
    {"sweep": true} / {"reconcile": true}
    {"status": "a1", "expect_status": {"known": false, "last_kind": "UNKNOWN_ORDER"}}
    {"executions_since": null, "expect_exec_ids": ["…"]}
    {"subscribe": "AAPL"}
    {"check_positions": true}                 reqPositions against the scenario's "books" (a divergence counts on the second sighting)
    {"expect_divergences": [{"symbol": "AAPL", "ib_position": 70, "book_position": 40}]}   every divergence told so far (one per account)
    {"close_workflow": "a1"}                  the order workflow of a1 has closed: its events are not delivered
    {"expect_late_fills": [{"intent_id": "a1", "last_qty": 30}]}
    {"expect_requests": {"reqMktData": 2}}
    {"expect": {"a1": [{"kind": "ACCEPTED"}, {"kind": "FILL", "cum_qty": 100, "leaves_qty": 0}]}}

`expect` compares the intent's events as a consumer keeps them (each exec id once, verbatim
repeats once) — returned by activities and signalled alike, in order. A pattern is a subset of
ExecutionEvent fields, plus `text_contains`."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.execution import ExecutionEvent, VenueOrderStatus
from testkit.contract import ContractRun, Submit, applied, executed
from testkit.ibkr.sinks import RecordingSink, StaticBooks
from testkit.ibkr.tws import FakeTWS
from venues.ibkr.gateway import IbkrGateway
from venues.ibkr.models import IbkrOrder, IbkrSettings

TEST_CLIENT_ID = 17
START = 1_749_562_200.0  # 2025-06-10 13:30 UTC (09:30 New York): the fake TWS's default start


class FakeClock:
    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fake_settings(state_dir: Path, tws: FakeTWS | None = None, **overrides: Any) -> IbkrSettings:
    base: dict[str, Any] = {
        "state_dir": Path(state_dir),
        "port": tws.port if tws is not None else 7497,
        "client_id": TEST_CLIENT_ID,
        "account": "",
        "ack_timeout": 0.3,
        "cancel_timeout": 0.3,
        "reconnect_min_delay": 0.01,
        "reconnect_max_delay": 0.05,
        "sweep_every": 3600.0,
        "connect_timeout": 2.0,
        "commission_wait": 0.5,
        "positions_every": 3600.0,
    }
    return IbkrSettings(**(base | overrides))


def gateway_over(tws: FakeTWS, state_dir: Path, sink: Any = None, clock: FakeClock | None = None, books: Any = None, **settings: Any) -> IbkrGateway:
    """A gateway connecting to the fake TWS's port with the test settings."""
    return IbkrGateway(
        fake_settings(state_dir, tws, **settings),
        sink if sink is not None else RecordingSink(),
        ib=tws.make_ib(),
        clock=clock or FakeClock(),
        books=books,
    )


@dataclass
class ScenarioRun:
    scenario: dict
    tws: FakeTWS
    gateway: IbkrGateway
    sink: RecordingSink
    clock: FakeClock
    stream: list[tuple[str, ExecutionEvent]] = field(default_factory=list)  # (returned|signal, event)
    replies: list[tuple[int, object]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    quantities: dict[str, int] = field(default_factory=dict)
    sides: dict[str, str] = field(default_factory=dict)
    symbols: dict[str, str] = field(default_factory=dict)

    def events(self, intent_id: str) -> list[ExecutionEvent]:
        return applied([e for _, e in self.stream if e.intent_id == intent_id])

    def contract_run(self) -> ContractRun:
        return ContractRun(venue="ibkr-fake", events=[e for _, e in self.stream])

    def positions(self) -> dict[str, int]:
        """Signed shares per symbol from the executions the consumer applied (corrections replace)."""
        held: dict[str, int] = {}
        for intent in self.quantities:
            sign = 1 if self.sides[intent] == "BUY" else -1
            held[self.symbols[intent]] = held.get(self.symbols[intent], 0) + sign * executed(self.events(intent))
        return {k: v for k, v in held.items() if v}


def _matches(event: ExecutionEvent, pattern: dict) -> bool:
    for key, want in pattern.items():
        if key == "text_contains":
            if want not in event.text:
                return False
        elif key == "kind":
            if event.kind.value != want:
                return False
        elif getattr(event, key) != want:
            return False
    return True


def _describe(events: list[ExecutionEvent]) -> str:
    return "[" + ", ".join(f"{e.kind.value}(cum={e.cum_qty}, leaves={e.leaves_qty}{', ' + e.exec_id if e.exec_id else ''})" for e in events) + "]"


async def run_scenario(source: Path | dict, state_dir: Path) -> ScenarioRun:
    spec = json.loads(Path(source).read_text()) if not isinstance(source, dict) else source
    tws_options = spec.get("tws", {})
    tws = FakeTWS(
        next_valid_id=tws_options.get("next_valid_id", 1),
        auto_ack=tws_options.get("auto_ack", True),
        auto_cancel=tws_options.get("auto_cancel", True),
        master_client_id=tws_options.get("master_client_id"),
    )
    for raw in spec.get("broker_orders", []):
        tws.add_order(
            raw["intent_id"],
            raw["symbol"],
            raw["side"],
            raw["quantity"],
            raw.get("limit_price"),
            status=raw.get("status", "Submitted"),
            client_id=raw.get("client_id", TEST_CLIENT_ID),
            order_id=raw.get("order_id", 1),
            perm_id=raw.get("perm_id"),
            order_ref=raw.get("order_ref"),
        )
    clock = FakeClock()
    settings = fake_settings(state_dir, tws, **spec.get("gateway", {}))
    sink = RecordingSink()
    books = StaticBooks(spec["books"]) if "books" in spec else None
    await tws.start()
    gateway = IbkrGateway(settings, sink, ib=tws.make_ib(), clock=clock, books=books)
    run = ScenarioRun(spec, tws, gateway, sink, clock)
    delivered = 0

    async def settle() -> None:
        nonlocal delivered
        for _ in range(3):
            await tws.settle()
            await run.gateway.idle()
        run.stream += [("signal", e) for e in sink.events[delivered:]]
        delivered = len(sink.events)

    def returned(index: int, step: dict, events: list[ExecutionEvent]) -> None:
        run.stream.extend(("returned", e) for e in events)
        run.replies.append((index, events))
        if "returns" in step and [e.kind.value for e in events] != step["returns"]:
            run.failures.append(f"step {index}: returned {_describe(events)}, expected kinds {step['returns']}")

    await gateway.start()
    await settle()
    try:
        for index, step in enumerate(spec["steps"]):
            if "submit" in step:
                order = IbkrOrder(**({"account": "desk1"} | step["submit"]))
                run.quantities[order.intent_id] = order.quantity
                run.sides[order.intent_id] = order.side
                run.symbols[order.intent_id] = order.symbol
                if "on_place" in step:
                    tws.on_place_script[order.intent_id] = step["on_place"]
                returned(index, step, await run.gateway.submit(order))
            elif "cancel" in step:
                if "on_cancel" in step:
                    tws.on_cancel_script[step["cancel"]] = step["on_cancel"]
                returned(index, step, await run.gateway.cancel(step["cancel"]))
            elif "tws" in step:
                for callback in step["tws"]:
                    tws.apply(callback)
            elif "while_down" in step or "unheard" in step:
                for callback in step.get("while_down", step.get("unheard")):
                    tws.apply(callback, deliver=False)
            elif "drop_connection" in step:
                tws.drop_connection(then_down=step.get("down", False))
            elif "tws_up" in step:
                tws.up = True
                await run.gateway.wait_connected(5.0)
            elif "stop_gateway" in step:
                await run.gateway.stop()
            elif "start_gateway" in step:
                run.gateway = IbkrGateway(settings, sink, ib=tws.make_ib(), clock=clock, books=books)
                await run.gateway.start()
            elif "advance" in step:
                clock.advance(float(step["advance"]))
            elif "close_day" in step:
                clock.advance(9 * 3600)  # 22:30 UTC: past the 16:00 New York close
                tws.close_day()
            elif "next_day" in step:
                clock.advance(24 * 3600 - (clock.now - START) % (24 * 3600))  # the next day, 13:30 UTC
                tws.next_day()
            elif "link_lost" in step:
                tws.link_lost(int(step["link_lost"]))
            elif "link_restored" in step:
                tws.link_restored(int(step["link_restored"]))
            elif "sweep" in step:
                await run.gateway.sweep()
            elif "reconcile" in step:
                await run.gateway.reconcile("scenario")
            elif "status" in step:
                status: VenueOrderStatus = await run.gateway.order_status(step["status"])
                run.replies.append((index, status))
                for key, want in step.get("expect_status", {}).items():
                    got = getattr(status, key)
                    got = got.value if hasattr(got, "value") else got
                    if key == "executions":
                        got = len(got)
                    if got != want:
                        run.failures.append(f"step {index}: status {step['status']}.{key} = {got!r}, expected {want!r}")
            elif "executions_since" in step:
                fills = await run.gateway.executions_since(step["executions_since"])
                run.replies.append((index, fills))
                if "expect_exec_ids" in step and [f.exec_id for f in fills] != step["expect_exec_ids"]:
                    run.failures.append(f"step {index}: executions_since gave {[f.exec_id for f in fills]}, expected {step['expect_exec_ids']}")
            elif "subscribe" in step:
                await run.gateway.subscribe_quotes(step["subscribe"])
            elif "check_positions" in step:
                await run.gateway.check_positions("scenario")
            elif "close_workflow" in step:
                sink.closed.add(step["close_workflow"])
            elif any(k in step for k in ("expect_requests", "expect", "expect_divergences", "expect_late_fills")):
                pass
            else:
                raise ValueError(f"step {index}: unknown step {step}")
            await settle()
            if "expect_requests" in step:
                counts = Counter(r[0] if r[0] != "reqMktData" else "reqMktData" for r in tws.requests)
                for name, want in step["expect_requests"].items():
                    if counts[name] != want:
                        run.failures.append(f"step {index}: {counts[name]} {name} requests, expected {want}")
            if "expect_divergences" in step:
                got_d = [{k: getattr(d, k) for k in want} for d, want in zip(sink.divergences, step["expect_divergences"])]
                if len(sink.divergences) != len(step["expect_divergences"]) or got_d != step["expect_divergences"]:
                    run.failures.append(f"step {index}: divergences {[d.text for d in sink.divergences]}, expected {step['expect_divergences']}")
            if "expect_late_fills" in step:
                got_l = [{"intent_id": f.intent_id, "last_qty": f.event.last_qty} for f in sink.late_fills]
                if got_l != step["expect_late_fills"]:
                    run.failures.append(f"step {index}: late fills {got_l}, expected {step['expect_late_fills']}")
            for intent, patterns in step.get("expect", {}).items():
                got = run.events(intent)
                if len(got) != len(patterns) or not all(_matches(e, p) for e, p in zip(got, patterns)):
                    run.failures.append(f"step {index}: {intent} saw {_describe(got)}, expected {patterns}")
    finally:
        await run.gateway.stop()
        await tws.stop()
    return run


class IbkrFakeHarness:
    """The IBKR venue for `testkit.contract.run_venue_commands`: the gateway over a fake TWS that
    acknowledges and cancels on its own; venue_fill / venue_cancel script the market's side."""

    name = "ibkr-fake"

    def __init__(self, state_dir: Path, **settings: Any) -> None:
        self.tws = FakeTWS(auto_ack=True, auto_cancel=True)
        self.sink = RecordingSink()
        self.clock = FakeClock()
        self.gateway = gateway_over(self.tws, state_dir, self.sink, self.clock, **settings)
        self._seen = 0

    async def __aenter__(self) -> IbkrFakeHarness:
        await self.tws.start()
        await self.gateway.start()
        await self.settle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.gateway.stop()
        await self.tws.stop()

    async def submit(self, cmd: Submit) -> list[ExecutionEvent]:
        return await self.gateway.submit(
            IbkrOrder(
                intent_id=cmd.intent_id,
                account=cmd.account,
                symbol=cmd.symbol,
                side=cmd.side,
                quantity=cmd.quantity,
                order_type=cmd.order_type,
                limit_price=cmd.limit_price,
            )
        )

    async def cancel(self, intent_id: str) -> list[ExecutionEvent]:
        return await self.gateway.cancel(intent_id)

    async def order_status(self, intent_id: str) -> VenueOrderStatus:
        return await self.gateway.order_status(intent_id)

    async def executions_since(self, cursor: str | None) -> list[ExecutionEvent]:
        return await self.gateway.executions_since(cursor)

    async def venue_fill(self, intent_id: str, quantity: int, price: float) -> None:
        self.tws.apply({"cb": "fill", "order": intent_id, "shares": quantity, "price": price})

    async def venue_cancel(self, intent_id: str) -> None:
        self.tws.apply({"cb": "cancelled", "order": intent_id, "message": "Cancelled by the venue"})

    async def settle(self) -> list[ExecutionEvent]:
        for _ in range(3):
            await self.tws.settle()
            await self.gateway.idle()
        new = self.sink.events[self._seen :]
        self._seen = len(self.sink.events)
        return list(new)

"""Typed seams (issue 21): one strict base, message models in protocol/, enums where the domain has
one — with the strings every history, digest and printed line already holds."""

import importlib
import inspect
import math

import pytest
from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowExecutionStatus

from domain.base import Finite, Frozen, Record
from domain.enums import Bucket, DecisionReason, PriceRule, ReconcileStatus, Regime, RiskMode, TradingState
from domain.ledger import BookState, Ledger
from domain.marks import MarkSource
from domain.models import position_key
from protocol.account_state import CycleState
from protocol.messages import DecisionRecord, MarkView
from protocol.order_commands import ReplaceOrder
from protocol.order_record import Reconciled
from protocol.sessions import RollNotice
from scenarios.evaluate import _describe
from tests.test_decision_log import record

MESSAGE_MODULES = ("protocol.order_commands", "protocol.account_requests", "protocol.sessions", "protocol.market", "protocol.scenario_plan")


class _Value(Finite):
    price: float


class _Row(Record):
    quantity: int


def test_the_bases_refuse_an_unknown_field_and_a_value_from_outside_is_finite():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        _Row(quantity=1, quantiy=2)
    row = _Row(quantity=1)
    row.quantity = 2  # a Record is updated in place
    value = _Value(price=1.5)
    with pytest.raises(ValidationError, match="frozen"):
        value.price = 2.0
    assert hash(value) == hash(_Value(price=1.5))
    for bad in (math.inf, -math.inf, math.nan, "Infinity"):
        with pytest.raises(ValidationError, match="finite"):
            _Value(price=bad)
    assert issubclass(Finite, Frozen) and issubclass(Frozen, Record)


@pytest.mark.parametrize("module", MESSAGE_MODULES)
def test_every_message_model_of_the_activities_lives_in_protocol_on_the_strict_base(module):
    models = [
        m for _, m in inspect.getmembers(importlib.import_module(module), inspect.isclass) if issubclass(m, BaseModel) and m.__module__ == module
    ]
    assert models, module
    assert [m.__name__ for m in models if not issubclass(m, Record)] == []


def test_no_activity_module_defines_a_model():
    for name in ("calendar", "market", "scenarios", "account_calls", "order_calls", "client_ops", "firm_calls"):
        module = importlib.import_module(f"activities.{name}")
        own = [n for n, m in inspect.getmembers(module, inspect.isclass) if issubclass(m, BaseModel) and m.__module__ == module.__name__]
        assert own == [], f"activities/{name}.py defines {own}"


def test_a_decision_record_holds_enums_and_writes_the_same_strings():
    d = record(1, "10:00:00", 0)
    assert (d.regime, d.reason) == (Regime.MID, DecisionReason.WITHIN_LIMITS)
    dumped = d.model_dump(mode="json")
    assert (dumped["regime"], dumped["reason"]) == ("MID", "WITHIN_LIMITS")
    assert DecisionRecord.model_validate_json(d.model_dump_json()) == d
    with pytest.raises(ValidationError, match="regime"):
        DecisionRecord.model_validate(dumped | {"regime": "NOON"})
    with pytest.raises(ValidationError, match="reason"):
        DecisionRecord.model_validate(dumped | {"reason": "BECAUSE"})


def test_printed_lines_show_the_values_not_the_enum_names():
    assert _describe(record(1, "10:00:00", 0, RiskMode.NORMAL)) == "10:00:00 MID NORMAL WITHIN_LIMITS gross 90.00% → 90.00%"
    notice = RollNotice(
        account="a",
        date="2026-11-25",
        close="16:00",
        daily=1.0,
        realized=0.0,
        unrealized=1.0,
        positions=2,
        expired=0,
        next_session=None,
        trading_state="HALTED",
    )
    assert notice.trading_state is TradingState.HALTED and notice.sentence().endswith("trading state HALTED")


def test_a_mark_view_names_its_source_from_the_domain():
    assert MarkView(symbol="AAPL", mark=1.0, source="MARK").source is MarkSource.MARK
    assert MarkView(symbol="AAPL", mark=1.0, source="TRUTH_TICK").model_dump(mode="json")["source"] == "TRUTH_TICK"
    with pytest.raises(ValidationError, match="source"):
        MarkView(symbol="AAPL", mark=1.0, source="GUESS")


def test_a_replace_carries_its_price_rule_as_the_enum():
    assert ReplaceOrder(intent_id="o1", quantity=10, price_rule="AT_BID").price_rule is PriceRule.AT_BID
    with pytest.raises(ValidationError, match="price_rule"):
        ReplaceOrder(intent_id="o1", quantity=10, price_rule="CHEAP")


def test_a_reconcile_status_is_any_status_the_server_gives_or_why_there_is_none():
    assert {s.name for s in WorkflowExecutionStatus} <= {s.value for s in ReconcileStatus}
    found = Reconciled(intent_id="o1", status="COMPLETED")
    assert found.status is ReconcileStatus.COMPLETED and found.status.lower() == "completed"
    with pytest.raises(ValidationError, match="status"):
        Reconciled(intent_id="o1", status="SLEEPING")


def test_one_position_key_and_books_carried_with_the_ledgers_old_keys_read_the_same():
    import domain.ledger
    import domain.pnl

    assert domain.ledger.position_key is domain.pnl.position_key is position_key
    assert position_key("AAPL", Bucket.LT) == "AAPL/LT"  # the key the P&L's messages already show
    carried = {"symbol": "AAPL", "bucket": "LT", "quantity": 5}
    book = BookState.model_validate({"equity": 1e6, "positions": {"AAPL|LT": carried}})
    assert list(book.positions) == ["AAPL/LT"] and Ledger(book).position(("AAPL", Bucket.LT)) == 5
    cycle = CycleState.model_validate({"hard_base": {"AAPL|LT": 7, "SPY/MM_PURE": 3}})
    assert cycle.hard_base == {"AAPL/LT": 7, "SPY/MM_PURE": 3}

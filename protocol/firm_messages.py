"""What the firm workflow (workflows/firm.py), its activities, the CLI and the accounts agree on: the
firm's input and carried state, the kill switch's requests and answers, the view. Every field bounded."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from pydantic import Field, StrictBool, field_validator

from domain.base import Finite, Record
from domain.enums import TradingState
from domain.events import TradingStateRequest
from domain.firm import MAX_MEMBERS, Amounts, FirmBook, FirmLimits, Usage, UsageReport

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$"  # firms and accounts alike (RiskInput.account)
CHANGES_KEPT = 200
AccountName = Annotated[str, Field(pattern=NAME_PATTERN)]


class FirmHaltRequest(Finite):
    """The firm's kill switch: every member account HALTED, with who and why."""

    by: str = Field(min_length=1, max_length=80)
    reason: str = Field(min_length=1, max_length=400)  # the accounts record it with the firm's name before it
    freeze: StrictBool = False  # de-risk stops too, in every member


class FirmResumeRequest(Finite):
    by: str = Field(min_length=1, max_length=80)
    reason: str = Field(min_length=1, max_length=400)


class FirmChange(Finite):
    """One change of the firm's trading state, recorded once."""

    state: TradingState
    previous: TradingState
    by: str
    reason: str
    freeze: bool = False
    at: str  # workflow time, ISO
    number: int  # 1, 2, … over the firm's life (the members' update ids carry it)


class MemberOutcome(str, Enum):
    HALTED = "HALTED"
    ALREADY_HALTED = "ALREADY_HALTED"
    RESUMED = "RESUMED"
    LEFT_AS_IS = "LEFT_AS_IS"  # resume: not halted by this firm (an operator's own halt stands)
    NO_SUCH_ACCOUNT = "NO_SUCH_ACCOUNT"
    CLOSED = "CLOSED"
    REFUSED = "REFUSED"
    UNREACHABLE = "UNREACHABLE"

    @property
    def done(self) -> bool:
        """The member is where the firm asked it to be, or cannot be (and says why)."""
        return self not in (MemberOutcome.REFUSED, MemberOutcome.UNREACHABLE)


class MemberResult(Finite):
    account: str
    outcome: MemberOutcome
    detail: str = ""


class FanOut(Finite):
    """The activity's order: set every member's trading state (the firm's halt or resume)."""

    firm: str
    members: list[AccountName] = Field(max_length=MAX_MEMBERS)
    request: TradingStateRequest
    tag: str = Field(max_length=200)  # the accounts' update ids: "<tag>:<account>", deduplicated by the server
    resume: bool = False


class FirmState(Record):
    """What the firm carries through continue-as-new (bounded: members ≤ MAX_MEMBERS, changes ≤ CHANGES_KEPT)."""

    trading_state: TradingState = TradingState.ACTIVE
    frozen: bool = False
    changes: list[FirmChange] = Field(default_factory=list, max_length=CHANGES_KEPT)
    book: FirmBook
    last_results: list[MemberResult] = Field(default_factory=list, max_length=MAX_MEMBERS)


class FirmInput(Record):
    firm: str = Field(pattern=NAME_PATTERN)
    limits: FirmLimits
    accounts: list[AccountName] = Field(min_length=1, max_length=MAX_MEMBERS)
    carried: FirmState | None = None

    @field_validator("accounts")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an account is listed twice")
        return value


class MemberView(Finite):
    account: str
    allocated: Amounts
    granted: Amounts
    released: Amounts
    usage: Usage
    reports: int
    reclaim_to: Amounts | None = None


class FirmView(Finite):
    firm: str
    trading_state: TradingState
    frozen: bool
    limits: FirmLimits
    allocated: Amounts
    pool: Amounts
    members: list[MemberView]
    changes: list[FirmChange]
    last_results: list[MemberResult]


class FirmAnswer(Finite):
    message: str
    results: list[MemberResult] = Field(default_factory=list)


class ReportToFirm(Record):
    """An account's usage report to its firm (activities/firm_calls.py `report_to_firm`)."""

    firm: str
    report: UsageReport

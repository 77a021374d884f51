"""What the CLI tells a user who asked for something it cannot do: one line and an exit code,
never a traceback (cli/main.py prints it)."""

from __future__ import annotations

import re
from enum import Enum

from temporalio.service import RPCError, RPCStatusCode

from protocol.parse import first_line  # noqa: F401 — the CLI's errors say it in one line too

EXIT_REFUSED = 1  # the request reached the rig and was refused (unknown id, closed order…)
EXIT_BAD_INPUT = 2  # the request itself is wrong (bad value, bad file)


class UserError(Exception):
    """A user's mistake or a refusal: `str()` is the one line shown."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


def is_not_found(err: BaseException) -> bool:
    return isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND


def enum_value(value: str | None, enum: type[Enum], option: str) -> str | None:
    """A visibility-query value that must be one of an enum's: refused (with the list) otherwise,
    so nothing a user types can reach the query text but the enum's own spelling."""
    if value is None:
        return None
    allowed = [str(member.value) for member in enum]
    upper = value.strip().upper()
    if upper not in allowed:
        raise UserError(f"{option} {value[:60]!r} is not one of {', '.join(allowed)}", EXIT_BAD_INPUT)
    return upper


def pattern_value(value: str | None, pattern: str, option: str, what: str) -> str | None:
    """A free-text query value (symbol, account): refused unless it is spelled like one, so it
    can never close the query's quotes."""
    if value is None:
        return None
    if not re.fullmatch(pattern, value):
        raise UserError(f"{option} {value[:60]!r} is not {what}", EXIT_BAD_INPUT)
    return value

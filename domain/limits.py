"""Bounds on every number that enters the rig from outside, checked before any arithmetic.

JSON lets a caller send a 400-digit integer, 1e308, or "NaN" as a string; Python turns the first
into an int that overflows `float()` and the second into inf after one multiplication. Each
bound is far beyond anything a desk sends and far inside what float arithmetic handles exactly
enough for exposure sums, so a value inside the bounds can never fail a workflow task.
"""

from __future__ import annotations

import math
from typing import Any

MAX_QUANTITY = 1_000_000_000  # shares in one order or one position
MAX_PRICE = 10_000_000.0  # per share
MAX_EQUITY = 1e13  # account currency
MAX_PCT = 10_000.0  # percentages of equity in synthetic events
MAX_ID_LENGTH = 200  # intent ids, account names, symbols, notes
MAX_TEXT_LENGTH = 1_000


def whole_number(value: Any, name: str, *, low: int = 1, high: int = MAX_QUANTITY) -> str | None:
    """Why `value` is not a whole number in [low, high], or None. Floats like 100.0 pass."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{name} must be a whole number, got {_show(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite whole number, got {_show(value)}"
    if isinstance(value, int) and not (low <= value <= high):
        return f"{name} must be between {low:,} and {high:,}, got {_show(value)}"
    if isinstance(value, float) and (value != int(value) or not (low <= value <= high)):
        return f"{name} must be a whole number between {low:,} and {high:,}, got {_show(value)}"
    return None


def positive_amount(value: Any, name: str, *, high: float = MAX_PRICE) -> str | None:
    """Why `value` is not a finite number in (0, high], or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{name} must be a number, got {_show(value)}"
    if isinstance(value, int) and not (0 < value <= high):
        return f"{name} must be > 0 and at most {high:,.0f}, got {_show(value)}"
    if isinstance(value, float) and not (math.isfinite(value) and 0 < value <= high):
        return f"{name} must be a finite number > 0 and at most {high:,.0f}, got {_show(value)}"
    return None


def short_text(value: Any, name: str, *, high: int = MAX_ID_LENGTH) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{name} must be a non-empty string, got {_show(value)}"
    if len(value) > high:
        return f"{name} must be at most {high} characters, got {len(value)}"
    return None


def _show(value: Any) -> str:
    """A bounded rendering of whatever was sent (a 400-digit integer prints as its length)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**18:
        # bit_length, not str(): Python refuses str() of integers beyond 4,300 digits.
        return f"an integer of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

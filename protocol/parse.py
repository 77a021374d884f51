"""Messages as handlers see them: a payload that does not fit is refused by the update's
validator with the field and the problem named (a typed argument would fail earlier, in the
SDK's decoding, as a bare "Failed decoding arguments")."""

from __future__ import annotations

import re
from functools import cache
from typing import Any, TypeVar, cast

from pydantic import BaseModel, TypeAdapter, ValidationError

M = TypeVar("M", bound=BaseModel)


def first_error(err: ValidationError, whole: str = "(message)") -> str:
    """The first problem, with where it is (`whole` when it is the value as a whole)."""
    first = err.errors()[0]
    where = ".".join(printable(str(part))[:60] for part in first["loc"]) or whole
    return f"{where}: {printable(first['msg'])}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str) -> str:
    """`text` on one line: control characters (a key "\\n" in a file) shown escaped, never acted on."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def first_line(err: BaseException, limit: int = 300) -> str:
    """An exception in one line (its cause's, for the SDK's wrappers; its type when it says nothing)."""
    text = str(getattr(err, "cause", None) or err) or type(err).__name__
    return text.splitlines()[0][:limit]


@cache
def _list_of(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]  # built once per model: deliveries parse on the hot path


# The start of the value protocol/converter.py gives a raw receiver for a payload it refused
# before decoding (too deep, too big, not JSON): the reason, which the refusal passes on.
REFUSED_PAYLOAD = "payload refused: "


def _refused(model: type[BaseModel], raw: Any, what: str) -> None:
    if isinstance(raw, str) and raw.startswith(REFUSED_PAYLOAD):
        raise ValueError(f"{what}{model.__name__}: {raw}")


def parse(model: type[M], raw: Any) -> M:
    if isinstance(raw, model):
        return raw
    _refused(model, raw, "")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ValueError(f"{model.__name__}: {first_error(err)}") from None


def parse_list(model: type[M], raw: Any) -> list[M]:
    _refused(model, raw, "list of ")
    try:
        return cast(list[M], _list_of(model).validate_python(raw))
    except ValidationError as err:
        raise ValueError(f"list of {model.__name__}: {first_error(err)}") from None

"""Messages as handlers see them: a payload that does not fit is refused by the update's
validator with the field and the problem named (a typed argument would fail earlier, in the
SDK's decoding, as a bare "Failed decoding arguments")."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

M = TypeVar("M", bound=BaseModel)


def first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(message)"
    return f"{where}: {first['msg']}"


def parse(model: type[M], raw: Any) -> M:
    if isinstance(raw, model):
        return raw
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ValueError(f"{model.__name__}: {first_error(err)}") from None


def parse_list(model: type[M], raw: Any) -> list[M]:
    try:
        return TypeAdapter(list[model]).validate_python(raw)  # type: ignore[valid-type]
    except ValidationError as err:
        raise ValueError(f"list of {model.__name__}: {first_error(err)}") from None

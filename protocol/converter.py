"""The rig's data converter: Temporal's pydantic converter, with every incoming JSON payload
bounded before it is decoded.

A payload from outside (`temporal workflow start --input`, an update, a signal) is at most
MAX_PAYLOAD_BYTES and nested at most MAX_JSON_DEPTH deep. Past that, pydantic's JSON parser
stops at about 200 levels with an error, which the SDK turns into a failed workflow task that
retries forever (an order input nested 3,000 deep). Refused instead:

- where the receiver takes raw JSON (`Any`: every workflow's input, the desk-facing updates), the
  value is a RefusedPayload, a string saying why, which the receiver's own checks refuse like any
  other malformed message (an order: REJECTED MALFORMED_INTENT);
- where it takes a model, an ApplicationError: the update is refused, the signal dropped, a
  workflow's input fails the workflow, never its task. A payload that is not the model is
  refused the same way, in one line naming the field (the SDK's own message would be a bare
  "Failed decoding arguments").

The limit also leaves room to wrap: an accepted intent nested 64 deep still decodes inside the
account's pre-trade request, a few levels deeper.
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any, Self

import temporalio.api.common.v1
from pydantic import BaseModel, ValidationError
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    BinaryNullPayloadConverter,
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.exceptions import ApplicationError

from protocol.parse import REFUSED_PAYLOAD, first_error

MAX_JSON_DEPTH = 64
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024  # Temporal's own limit on one payload (blob size)
RAW_HINTS = (None, Any, object)  # receivers that take the JSON as it came

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 opening, -1 (as a signed byte) closing


class RefusedPayload(str):
    """In place of a raw JSON value that was refused before decoding; the text, starting with
    REFUSED_PAYLOAD, says why (protocol.parse passes it on as the refusal's reason)."""


def nesting_depth(data: bytes) -> int:
    """How deep the JSON's arrays and objects nest (brackets inside strings do not count); all
    at C speed: about 35 ms a megabyte of brackets."""
    steps = _NOT_BRACKET.sub(b"", _STRING.sub(b"", data)).translate(_STEP)
    return max(itertools.accumulate(memoryview(steps).cast("b")), default=0)


def payload_problem(data: bytes) -> str | None:
    """Why a JSON payload is refused before decoding, or None."""
    if len(data) > MAX_PAYLOAD_BYTES:
        return f"{REFUSED_PAYLOAD}{len(data):,} bytes, over the limit of {MAX_PAYLOAD_BYTES:,}"
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:  # too few brackets to nest too deep
        return None
    depth = nesting_depth(data)
    if depth > MAX_JSON_DEPTH:
        return f"{REFUSED_PAYLOAD}JSON nested {depth:,} levels deep, over the limit of {MAX_JSON_DEPTH}"
    return None


class _RefusesInWorkflowContext(WithSerializationContext):
    """A converter that knows whether it decodes in a workflow's own context (`_refuse_typed`)."""

    _refuse_typed = False

    def with_context(self, context: SerializationContext) -> Self:
        refuse = isinstance(context, WorkflowSerializationContext)
        if refuse == self._refuse_typed:
            return self
        other = copy.copy(self)
        other._refuse_typed = refuse
        return other


class BoundedJSONPayloadConverter(PydanticJSONPlainPayloadConverter, _RefusesInWorkflowContext):
    # In a workflow's own context (its input, updates and signals sent to it) a payload that is
    # not the model the receiver takes is refused in one line; elsewhere (an activity's input or
    # result) it stays the SDK's decoding error — a result a workflow cannot read is a bug that
    # fails its task, retried once the fix is deployed, never the workflow for good.

    def from_payload(self, payload: temporalio.api.common.v1.Payload, type_hint: type | None = None) -> Any:
        problem = payload_problem(payload.data)
        raw = type_hint in RAW_HINTS
        if problem is None:
            try:
                return super().from_payload(payload, type_hint)
            except ValidationError as err:
                if not raw and self._refuse_typed:  # a typed receiver: one line naming the field
                    raise ApplicationError(f"{_name(type_hint)}: {first_error(err)}", type="InvalidPayload", non_retryable=True) from None
                if not raw or err.errors()[0]["type"] != "json_invalid":
                    raise
                problem = f"{REFUSED_PAYLOAD}not valid JSON: {err.errors()[0]['msg'][:120]}"
        if raw:
            return RefusedPayload(problem)
        raise ApplicationError(problem, type="PayloadRefused", non_retryable=True)


def _name(type_hint: Any) -> str:
    return getattr(type_hint, "__name__", None) or str(type_hint)


class ModelNullPayloadConverter(BinaryNullPayloadConverter, _RefusesInWorkflowContext):
    """`null` (the SDK sends None as an empty binary/null payload, around the JSON decoding) is
    refused in a workflow's context where the receiver takes a model, like any other payload
    that is not the model; where it takes raw JSON or an Optional, it stays None."""

    def from_payload(self, payload: temporalio.api.common.v1.Payload, type_hint: type | None = None) -> Any:
        value = super().from_payload(payload, type_hint)
        if self._refuse_typed and isinstance(type_hint, type) and issubclass(type_hint, BaseModel):
            raise ApplicationError(f"{type_hint.__name__}: null is not one", type="InvalidPayload", non_retryable=True)
        return value


class BoundedPayloadConverter(CompositePayloadConverter):
    """The SDK's default encodings, with JSON through BoundedJSONPayloadConverter and null through
    ModelNullPayloadConverter."""

    def __init__(self) -> None:
        json_converter, null_converter = BoundedJSONPayloadConverter(), ModelNullPayloadConverter()
        super().__init__(
            *(
                json_converter if isinstance(c, JSONPlainPayloadConverter) else null_converter if isinstance(c, BinaryNullPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


data_converter = DataConverter(payload_converter_class=BoundedPayloadConverter)

"""The account's state across continue-as-new, compressed.

A live account carries its book (open orders, applied fill ids), its decision log and recent
intents and fills: at every cap that is megabytes of repetitive JSON, against Temporal's 2 MB
payload limit. zlib at a fixed level is deterministic, so replay sees the same input bytes.
"""

from __future__ import annotations

import base64
import zlib

from pydantic import BaseModel

from domain.ledger import BookState
from protocol.account_state import AccountState


class Carried(BaseModel):
    state: AccountState  # a run recorded before the account had parts carried it flat: regrouped on read
    book: BookState


def pack(state: AccountState, book: BookState) -> str:
    raw = Carried(state=state, book=book).model_dump_json().encode()
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def unpack(text: str) -> Carried:
    return Carried.model_validate_json(zlib.decompress(base64.b64decode(text)))

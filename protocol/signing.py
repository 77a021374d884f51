"""Messages only the rig may send, and the key that proves it.

Executions, the rig's cancels and replaces, arrivals, pre-trade requests, reports, an account's usage
report to its firm and a broker gateway's events are sent by the rig's own processes (the worker's
activities, the gateway). Each carries, in a Temporal header, an HMAC-SHA256 over the workflow it is
for, its name and its arguments as canonical JSON, with a key only those processes hold
(`RIG_MESSAGE_KEY`; older keys still accepted during a rotation in `RIG_MESSAGE_KEYS_OLD`, comma separated). The key is never in
workflow code or history: the worker's interceptors sign and verify (worker/signing.py). Someone
with access to the rig's namespace and no key is refused, whatever they send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

from protocol import contract as c
from venues.ibkr.models import SIGNAL_BROKER_DIVERGENCE, SIGNAL_BROKER_LATE_FILL

HEADER = "rig-signature"
INTERNAL_UPDATES = frozenset(
    {
        c.UPDATE_VENUE_EXECUTIONS,
        c.UPDATE_RIG_CANCEL,
        c.UPDATE_RIG_REPLACE,
        c.UPDATE_ARRIVAL,
        c.UPDATE_PRETRADE,
        c.UPDATE_REPLACE_CHECK,
        c.UPDATE_REPORT_USAGE,
    }
)
INTERNAL_SIGNALS = frozenset({c.SIGNAL_ORDER_REPORT, c.SIGNAL_VENUE_EVENT, SIGNAL_BROKER_LATE_FILL, SIGNAL_BROKER_DIVERGENCE})
INTERNAL = INTERNAL_UPDATES | INTERNAL_SIGNALS
KEY_ENV = "RIG_MESSAGE_KEY"
OLD_KEYS_ENV = "RIG_MESSAGE_KEYS_OLD"


class MessageKeyError(ValueError):
    """A message key that is not usable (the worker stops at start, in one line)."""


def canonical(workflow_id: str, name: str, args: Sequence[Any]) -> bytes:
    body = json.dumps(to_jsonable_python(list(args)), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{workflow_id}\n{name}\n{body}".encode()


@dataclass(frozen=True)
class Keyring:
    current: bytes
    old: tuple[bytes, ...] = ()
    ephemeral: bool = False  # not from RIG_MESSAGE_KEY: this machine's (or this process's) own key

    def sign(self, workflow_id: str, name: str, args: Sequence[Any]) -> str:
        return hmac.new(self.current, canonical(workflow_id, name, args), hashlib.sha256).hexdigest()

    def verifies(self, signature: str | None, workflow_id: str, name: str, args: Sequence[Any]) -> bool:
        if not signature:
            return False
        message = canonical(workflow_id, name, args)
        return any(hmac.compare_digest(hmac.new(key, message, hashlib.sha256).hexdigest(), signature) for key in (self.current, *self.old))


def _decode(text: str, name: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise MessageKeyError(f"{name}: not base64") from None
    if len(key) < 32:
        raise MessageKeyError(f"{name}: at least 32 bytes of key are needed, got {len(key)}")
    return key


# Without RIG_MESSAGE_KEY: this machine's key, made once and kept (owner-only) beside the dev
# server's state, so a restarted `make worker` still verifies what its predecessor signed — a
# key per process turned an order in flight across a restart into REJECTED (found by a probe).
LOCAL_KEY_FILE = Path(".state") / "message.key"


def keyring_from_env() -> Keyring:
    """The rig's message key from the environment; without one, this machine's local key
    (`.state/message.key`, made on first use), else one of this process only. Processes on more
    than one machine need the same RIG_MESSAGE_KEY."""
    current = os.environ.get(KEY_ENV, "").strip()
    old = tuple(_decode(k, OLD_KEYS_ENV) for k in os.environ.get(OLD_KEYS_ENV, "").split(",") if k.strip())
    if not current:
        return Keyring(_local_key() or secrets.token_bytes(32), old, ephemeral=True)
    return Keyring(_decode(current, KEY_ENV), old)


def _local_key() -> bytes | None:
    """The local key file's key (created, 0600, if absent); None when it cannot be kept."""
    try:
        LOCAL_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(LOCAL_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = LOCAL_KEY_FILE.read_bytes()
            return key if len(key) >= 32 else None
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
        return LOCAL_KEY_FILE.read_bytes()
    except OSError:
        return None


def new_key() -> str:
    """A fresh key, base64 (what `make env` writes for RIG_MESSAGE_KEY)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()

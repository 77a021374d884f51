"""The gateway's small state file (RIG_IBKR_STATE_DIR/ibkr-state.json), written atomically.

It holds what a restart must not forget: the orders the gateway placed (their tracks: ids,
applied executions, events), the execution journal behind `ibkr_executions_since` and its
cursor (the last exec id seen), events not yet delivered to the order workflows (the outbox),
and the market-data registry. Bounded: the newest journal entries and terminal orders are kept."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel

from domain.execution import ExecutionEvent
from venues.ibkr.translator import OrderTrack

STATE_FILE = "ibkr-state.json"
MAX_JOURNAL = 20_000
MAX_TERMINAL_TRACKS = 5_000


class GatewayState(BaseModel):
    version: int = 1
    client_id: int | None = None
    tracks: list[OrderTrack] = []
    journal: list[ExecutionEvent] = []  # FILL events in the order the gateway saw them
    cursor: str | None = None  # exec id of the last journal entry
    outbox: list[ExecutionEvent] = []  # to deliver through the sink, in order
    market_data: dict[str, int] = {}  # symbol → conId of the quotes subscribed

    def bounded(self) -> GatewayState:
        live = [t for t in self.tracks if not t.phase.terminal]
        done = [t for t in self.tracks if t.phase.terminal][-MAX_TERMINAL_TRACKS:]
        keep = {t.intent_id for t in live + done}
        return self.model_copy(
            update={
                "tracks": [t for t in self.tracks if t.intent_id in keep],
                "journal": self.journal[-MAX_JOURNAL:],
            }
        )


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / STATE_FILE

    def load(self) -> GatewayState:
        if not self.path.exists():
            return GatewayState()
        return GatewayState.model_validate_json(self.path.read_text())

    def save(self, state: GatewayState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.bounded().model_dump(mode="json"), separators=(",", ":")))
        os.replace(tmp, self.path)

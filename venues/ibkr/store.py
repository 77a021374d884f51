"""The gateway's state: a small SQLite database (RIG_IBKR_STATE_DIR/ibkr-state.sqlite3) written
incrementally, one transaction per batch of changes, with fsync (WAL, synchronous=FULL).

What a restart must not forget: the orders the gateway placed (their tracks: ids, applied
executions, events), the execution journal behind `ibkr_executions_since`, what is not yet
delivered (the outbox), the qualified contracts, the market-data registry, and the identity it
ran with (IB client id, IB account). A batch holds only what changed since the last one: a
placement writes its track, never the whole book. Writes run on one thread of their own (the
connection lives there), so the event loop reading IB's socket never waits on a disk; a caller
that needs durability (the write-ahead before placeOrder) awaits the batch.

Bounded: the newest MAX_JOURNAL journal entries and MAX_TERMINAL_TRACKS ended orders are kept."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from domain.execution import ExecutionEvent
from venues.ibkr.translator import OrderTrack

STATE_FILE = "ibkr-state.sqlite3"
LEGACY_FILE = "ibkr-state.json"  # the whole-file state of earlier versions: imported once, then renamed
MAX_JOURNAL = 20_000
MAX_TERMINAL_TRACKS = 5_000
PRUNE_EVERY = 256  # batches between two prunes

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tracks (intent_id TEXT PRIMARY KEY, terminal INTEGER NOT NULL, touched INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tracks_ended ON tracks (terminal, touched);
CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, exec_id TEXT UNIQUE NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contracts (symbol TEXT PRIMARY KEY, body TEXT NOT NULL);
"""


@dataclass
class Batch:
    """Changes to write together (one transaction)."""

    tracks: list[tuple[str, bool, str]] = field(default_factory=list)  # (intent id, ended, JSON)
    journal: list[ExecutionEvent] = field(default_factory=list)  # appended, or replaced by exec id
    outbox_add: list[tuple[int, str]] = field(default_factory=list)  # (id, JSON)
    outbox_done: list[int] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    contracts: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.tracks or self.journal or self.outbox_add or self.outbox_done or self.meta or self.contracts)


@dataclass
class Snapshot:
    """What the store holds, read once at start."""

    meta: dict[str, str]
    tracks: list[OrderTrack]
    journal: list[ExecutionEvent]
    outbox: list[tuple[int, str]]
    contracts: dict[str, str]


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / STATE_FILE
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ibkr-store")
        self._db: sqlite3.Connection | None = None
        self._batches = 0
        self._touch = 0
        self.last_write_seconds = 0.0

    # ----- on the store's thread -----------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # every commit fsyncs the WAL
            db.executescript(SCHEMA)
            self._db = db
            self._touch = db.execute("SELECT COALESCE(MAX(touched), 0) FROM tracks").fetchone()[0]
        return self._db

    def _load(self) -> Snapshot:
        db = self._connection()
        legacy = self.path.with_name(LEGACY_FILE)
        if legacy.exists() and not db.execute("SELECT COUNT(*) FROM meta").fetchone()[0]:
            self._import_legacy(legacy)
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        tracks = [OrderTrack.model_validate_json(body) for (body,) in db.execute("SELECT body FROM tracks ORDER BY touched")]
        journal = [ExecutionEvent.model_validate_json(body) for (body,) in db.execute("SELECT body FROM journal ORDER BY seq")]
        outbox = [(i, body) for i, body in db.execute("SELECT id, body FROM outbox ORDER BY id")]
        contracts = dict(db.execute("SELECT symbol, body FROM contracts").fetchall())
        return Snapshot(meta, tracks, journal, outbox, contracts)

    def _import_legacy(self, legacy: Path) -> None:
        """The JSON state file of earlier versions: its orders carry the bare intent id as orderRef."""
        state = json.loads(legacy.read_text())
        batch = Batch(meta={"client_id": str(state["client_id"])} if state.get("client_id") is not None else {"imported": legacy.name})
        for raw in state.get("tracks", []):
            track = OrderTrack.model_validate(raw)
            track.order_ref = track.order_ref or track.intent_id
            batch.tracks.append((track.intent_id, track.phase.terminal, track.model_dump_json()))
        batch.journal = [ExecutionEvent.model_validate(raw) for raw in state.get("journal", [])]
        batch.outbox_add = [(n + 1, json.dumps({"id": n + 1, "to": "order", "event": raw})) for n, raw in enumerate(state.get("outbox", []))]
        if state.get("market_data"):
            batch.meta["market_data"] = json.dumps(state["market_data"], sort_keys=True)
        self._write(batch)
        legacy.rename(legacy.with_suffix(".json.imported"))

    def _write(self, batch: Batch) -> float:
        started = time.perf_counter()
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            for intent_id, ended, body in batch.tracks:
                self._touch += 1
                db.execute(
                    "INSERT INTO tracks (intent_id, terminal, touched, body) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (intent_id) DO UPDATE SET terminal = excluded.terminal, touched = excluded.touched, body = excluded.body",
                    (intent_id, int(ended), self._touch, body),
                )
            for event in batch.journal:
                db.execute(
                    "INSERT INTO journal (exec_id, body) VALUES (?, ?) ON CONFLICT (exec_id) DO UPDATE SET body = excluded.body",
                    (event.exec_id, event.model_dump_json()),
                )
            db.executemany("INSERT OR REPLACE INTO outbox (id, body) VALUES (?, ?)", batch.outbox_add)
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in batch.outbox_done])
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(batch.meta.items()))
            db.executemany("INSERT OR REPLACE INTO contracts (symbol, body) VALUES (?, ?)", list(batch.contracts.items()))
            self._batches += 1
            if self._batches % PRUNE_EVERY == 0:
                self._prune(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.last_write_seconds = time.perf_counter() - started
        return self.last_write_seconds

    @staticmethod
    def _prune(db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM journal WHERE seq <= (SELECT seq FROM journal ORDER BY seq DESC LIMIT 1 OFFSET ?)", (MAX_JOURNAL,))
        db.execute(
            "DELETE FROM tracks WHERE terminal = 1 AND touched <= "
            "(SELECT touched FROM tracks WHERE terminal = 1 ORDER BY touched DESC LIMIT 1 OFFSET ?)",
            (MAX_TERMINAL_TRACKS,),
        )

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # ----- from the event loop -------------------------------------------------------------------

    def load(self) -> Snapshot:
        """At start, before the gateway serves (blocking is fine then)."""
        return self._pool.submit(self._load).result()

    async def write(self, batch: Batch) -> float:
        """Commit the batch on the store's thread; returns the seconds the commit took."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._write, batch)

    def write_now(self, batch: Batch) -> float:
        """The same, blocking (shutdown, a process that is about to exit)."""
        return self._pool.submit(self._write, batch).result()

    def prune_now(self) -> None:
        def prune() -> None:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            self._prune(db)
            db.execute("COMMIT")

        self._pool.submit(prune).result()

    def close(self) -> None:
        self._pool.submit(self._close).result()
        self._pool.shutdown(wait=True)

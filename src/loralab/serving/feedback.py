"""Thumbs up / down on served responses, kept in SQLite.

Every response the server gives (classification or generation) is remembered in memory for
a while (`ResponseLog`, the last `capacity` responses) under its id. `POST /v1/feedback`
looks the id up and stores the rating with the request, the response, the adapter and its
base model in the database. One writer thread owns the connection (WAL mode, synchronous
FULL) and commits each batch of writes before the waiting requests are answered, so an
acknowledged rating survives the server being killed.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created     REAL NOT NULL,
    response_id TEXT NOT NULL,
    rating      TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment     TEXT,
    adapter     TEXT,
    base        TEXT,
    task        TEXT,
    kind        TEXT NOT NULL,
    request     TEXT NOT NULL,
    response    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_adapter ON feedback (adapter, rating);
"""
COLUMNS = ("created", "response_id", "rating", "comment", "adapter", "base", "task", "kind",
           "request", "response")


SQLITE_HEADER = b"SQLite format 3\x00"


def check_feedback_db(path: Path) -> None:
    """Refuse (UserError, one line) a --feedback-db that is a folder, a file that is not an
    SQLite database, one SQLite cannot open, or one inside a folder that cannot be made."""
    from loralab.errors import UserError

    where = f"--feedback-db {path}"
    if path.is_dir():
        raise UserError(f"{where} is a folder; give a file (e.g. {path / 'feedback.sqlite'})")
    if path.exists():
        try:
            with open(path, "rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise UserError(f"{where}: cannot read it ({exc.strerror})") from None
        if header and header != SQLITE_HEADER:
            raise UserError(f"{where} is not an SQLite database (its first bytes are "
                            f"{header[:8]!r}); give a new file name or a loralab feedback "
                            "database")
    elif path.parent.exists() and not path.parent.is_dir():
        raise UserError(f"{where}: {path.parent} is not a folder")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True) if path.exists() \
            else None
        if connection is not None:
            connection.execute("PRAGMA schema_version").fetchone()
            connection.close()
    except sqlite3.Error as exc:
        raise UserError(f"{where}: SQLite cannot open it ({exc})") from None


class ResponseLog:
    """The most recent responses by id (what a rating refers to)."""

    def __init__(self, capacity: int = 10000) -> None:
        self.capacity = capacity
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.lock = threading.Lock()

    def add(self, response_id: str, record: dict[str, Any]) -> None:
        with self.lock:
            self.items[response_id] = record
            while len(self.items) > self.capacity:
                self.items.popitem(last=False)

    def get(self, response_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self.items.get(response_id)


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.executescript(SCHEMA)
    connection.commit()
    return connection


class FeedbackStore:
    """The database with its single writer thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connection = connect(path)
        self.jobs: queue.Queue[tuple[dict[str, Any], Future] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._write_loop, name="feedback-writer",
                                       daemon=True)
        self.thread.start()

    def _write_loop(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                break
            batch = [job]
            while True:                    # group commit: everything queued right now
                try:
                    more = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.jobs.put(None)
                    break
                batch.append(more)
            self._commit(batch)
        self.connection.close()

    def _commit(self, batch: list[tuple[dict[str, Any], Future]]) -> None:
        try:
            cursor = self.connection.cursor()
            ids = []
            for row, _ in batch:
                cursor.execute(f"INSERT INTO feedback ({', '.join(COLUMNS)}) VALUES "
                               f"({', '.join('?' for _ in COLUMNS)})",
                               [row.get(c) for c in COLUMNS])
                ids.append(cursor.lastrowid)
            self.connection.commit()
        except sqlite3.Error as exc:
            self.connection.rollback()
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), row_id in zip(batch, ids):
            future.set_result(row_id)

    async def add(self, rating: str, comment: str | None, response_id: str,
                  logged: dict[str, Any]) -> int:
        """Store one rating; returns its row id once committed."""
        row = {"created": time.time(), "response_id": response_id, "rating": rating,
               "comment": comment, "adapter": logged.get("adapter"),
               "base": logged.get("base"), "task": logged.get("task"),
               "kind": logged["kind"], "request": json.dumps(logged["request"]),
               "response": json.dumps(logged["response"])}
        future: Future = Future()
        self.jobs.put((row, future))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=30)

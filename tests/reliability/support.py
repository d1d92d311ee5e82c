"""Shared by the reliability tests: real histories renamed into many runs, the stores to put
them in, and the invariants every store must keep whatever happened to its writers."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest

from runhistory.adapters.history_json import load_history
from runhistory.app import RunHistory
from runhistory.domain.run_key import RunKey
from runhistory.stores.sql import create_engine
from runhistory.tail import tail_id_of
from tests.conformance_data import final_histories
from tests.test_store_sql_support import (
    POSTGRES_URL,
    drop_tables,
    postgres_unavailable,
    unique_prefix,
)

__all__ = [
    "LONG",
    "ROOT",
    "STORE_KINDS",
    "Store",
    "check_store",
    "key_of",
    "long_or_short",
    "open_store",
    "renamed",
    "small_histories",
]

ROOT = Path(__file__).resolve().parent.parent.parent
LONG = os.environ.get("RUNHISTORY_LONG", "") not in ("", "0")
STORE_KINDS = ("sqlite", "files", "postgres")
_STARTED = "workflowExecutionStartedEventAttributes"


def long_or_short(long: int, short: int, variable: str | None = None) -> int:
    """`long` under RUNHISTORY_LONG=1, else `short`; `variable` (an env name) overrides both."""
    if variable and os.environ.get(variable):
        return int(os.environ[variable])
    return long if LONG else short


@cache
def small_histories(max_bytes: int = 8000) -> tuple[tuple[str, bytes], ...]:
    """(label, raw JSON) of every real final history small enough to import in ~20 ms whose
    events are all durable (no transient tail), smallest first."""
    found = []
    for label, path in final_histories():
        if path.stat().st_size > max_bytes:
            continue
        raw = path.read_bytes()
        doc = orjson.loads(raw)
        if load_history(doc).durable_length != len(doc["events"]):
            continue
        found.append((len(raw), label, raw))
    found.sort()
    return tuple((label, raw) for _, label, raw in found)


def renamed(raw: bytes, workflow_id: str) -> dict[str, Any]:
    """A copy of a real history whose run is called `workflow_id` (same run id)."""
    doc: dict[str, Any] = orjson.loads(raw)
    doc["events"][0][_STARTED]["workflowId"] = workflow_id
    return doc


def key_of(doc: dict[str, Any]) -> RunKey:
    attrs = doc["events"][0][_STARTED]
    return RunKey(attrs["workflowId"], attrs["originalExecutionRunId"])


@dataclass
class Store:
    """One fresh store of a kind, its URL, and the environment that isolates it."""

    kind: str
    url: str
    env: dict[str, str] = field(default_factory=dict)
    root: Path | None = None

    def open(self) -> RunHistory:
        return RunHistory.open(self.url, **self.env)

    def process_env(self) -> dict[str, str]:
        """os.environ for a child process (the CLI reads the prefix from its environment)."""
        return {**os.environ, **self.env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


@contextmanager
def open_store(kind: str) -> Iterator[Store]:
    """A fresh, empty store of `kind`; PostgreSQL skips (saying why) when no server answers."""
    tmp = Path(tempfile.mkdtemp(prefix=f"rh-rel-{kind}-"))
    try:
        if kind == "sqlite":
            yield Store(kind, f"sqlite:///{tmp / 'events.db'}", root=tmp)
        elif kind == "files":
            (tmp / "store").mkdir()
            yield Store(kind, f"file://{tmp / 'store'}", root=tmp / "store")
        else:
            reason = postgres_unavailable()
            if reason is not None:
                pytest.skip(reason)
            prefix = unique_prefix("rel")
            try:
                yield Store(kind, POSTGRES_URL, {"RUNHISTORY_SQL_TABLE_PREFIX": prefix})
            finally:
                engine = create_engine(POSTGRES_URL)
                drop_tables(engine, prefix)
                engine.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_store(app: RunHistory, expected: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Assert the store's invariants; return (complete runs, absent runs) among `expected`.

    - no (aggregate, version) is recorded twice, and every aggregate's versions run 1..n;
    - every expected run is absent (no event, no tail) or complete: its export equals its
      source history exactly.
    """
    seen: set[tuple[UUID | str, int]] = set()
    versions: dict[UUID | str, list[int]] = {}
    start = 1
    while True:
        batch = app.recorder.select_notifications(start, 1000)
        for item in batch:
            pair = (item.originator_id, item.originator_version)
            assert pair not in seen, f"event recorded twice: {pair}"
            seen.add(pair)
            versions.setdefault(item.originator_id, []).append(item.originator_version)
        if len(batch) < 1000:
            break
        start = batch[-1].id + 1
    for originator, numbers in versions.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), (originator, numbers)
    complete = absent = 0
    for doc in expected:
        key = key_of(doc)
        stored = app.recorder.select_events(key.aggregate_id)
        if not stored:
            assert not app.recorder.select_events(tail_id_of(key.aggregate_id)), key
            assert key.aggregate_id not in versions, key
            absent += 1
            continue
        exported = app.export(key.workflow_id, key.run_id)
        assert exported == doc, f"run {key} is stored partly or differently"
        complete += 1
    return complete, absent

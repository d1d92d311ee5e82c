"""A child process for the concurrency harness (started with multiprocessing's spawn)."""

from __future__ import annotations

import os
import time
from typing import Any

from eventsourcing.persistence import IntegrityError

from runhistory.app import RunHistory
from runhistory.domain.errors import HistoryError
from runhistory.domain.run_key import RunKey

__all__ = ["Job", "Outcome", "work"]

Job = tuple[str, dict[str, Any], int]
"""(workflow id, full history, cut): cut 0 imports the history whole; cut n imports its first
n events and then `append`s the rest to whatever the store holds by then."""

Outcome = tuple[str, str | None, int, bool]
"""(workflow id, type of the first attempt's error or None, retries, finally stored)."""

TYPED = (HistoryError, IntegrityError)
RETRIES = 30


def _attempt(app: RunHistory, doc: dict[str, Any], cut: int) -> None:
    if not cut:
        app.import_history(doc)
        return
    events = doc["events"]
    result = app.import_history({"events": events[:cut]})
    key: RunKey = result.key
    stored = app.get(key).version
    app.append(key, events[stored:])


def work(
    url: str, env: dict[str, str], jobs: list[Job], start: Any, results: Any, who: int
) -> None:
    """Run each job once; on a typed error, retry with an idempotent whole import."""
    os.environ.update(env)
    outcomes: list[Outcome] = []
    untyped: list[str] = []
    app = RunHistory.open(url, **env)
    start.wait()
    for workflow_id, doc, cut in jobs:
        first: str | None = None
        retries = 0
        stored = False
        try:
            _attempt(app, doc, cut)
            stored = True
        except TYPED as e:
            first = type(e).__name__
        except Exception as e:  # noqa: BLE001 - reported to the parent, which fails the test
            untyped.append(f"{workflow_id} first attempt: {type(e).__name__}: {e}")
        while not stored and retries < RETRIES:
            retries += 1
            time.sleep(0.01 * retries)
            try:
                app.import_history(doc)
                stored = True
            except TYPED:
                continue
            except Exception as e:  # noqa: BLE001 - as above
                untyped.append(f"{workflow_id} retry {retries}: {type(e).__name__}: {e}")
        outcomes.append((workflow_id, first, retries, stored))
    app.close()
    results.put((who, outcomes, untyped))

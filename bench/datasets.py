"""The benchmark data: the real 50k-event run, and many ~100-event runs of real shapes.

Many runs are prefixes (80-120 events, each a legal history of an open run) of the real
2,235-event `long_history_activities` recording, cycled with every other recorded run whole;
each copy gets a fresh workflow id and run id, so they are distinct runs. Any count can be made
(1,000 for most figures, 10,000 for the runs read model's catch-up)."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["even_runs", "long_history", "many_runs"]

_STARTED = "workflowExecutionStartedEventAttributes"


def long_history(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    return loaded


def _renamed(doc: dict[str, Any], n: int) -> dict[str, Any]:
    events = copy.deepcopy(doc["events"])
    attrs = events[0][_STARTED]
    run_id = f"bench-run-{n:08d}"
    attrs["workflowId"] = f"bench-{n:06d}-{attrs.get('workflowId', '')}"
    attrs["originalExecutionRunId"] = run_id
    attrs["firstExecutionRunId"] = run_id
    for event in events:  # a reset run is named by its reset's newRunId
        failed = event.get("workflowTaskFailedEventAttributes")
        if failed and "newRunId" in failed:
            failed["newRunId"] = run_id
    return {"events": events}


def many_runs(conformance: Path, count: int) -> Iterator[dict[str, Any]]:
    finals = [
        json.loads((scenario.parent / execution["history"]).read_text())
        for scenario in sorted(conformance.glob("*/scenario.json"))
        for execution in json.loads(scenario.read_text())["executions"]
    ]
    long_run = max(finals, key=lambda d: len(d["events"]))
    others = [d for d in finals if d is not long_run]
    for n in range(count):
        if n % 2 == 0:
            size = 80 + (n * 7) % 41
            yield _renamed({"events": long_run["events"][:size]}, n)
        else:
            yield _renamed(others[(n // 2) % len(others)], n)


def even_runs(conformance: Path, count: int, size: int = 100) -> Iterator[dict[str, Any]]:
    """`count` runs of exactly `size` events: the first `size` events of the real 2,235-event
    `long_history_activities` recording (a legal history of an open run), each renamed."""
    finals = [
        json.loads((scenario.parent / execution["history"]).read_text())
        for scenario in sorted(conformance.glob("*/scenario.json"))
        for execution in json.loads(scenario.read_text())["executions"]
    ]
    long_run = max(finals, key=lambda d: len(d["events"]))
    prefix = {"events": long_run["events"][:size]}
    for n in range(count):
        yield _renamed(prefix, n)

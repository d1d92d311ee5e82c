"""`make demo`'s summary: one line per history under a directory, from the domain alone."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from runhistory.adapters.history_json import load_history
from runhistory.domain.errors import HistoryError
from runhistory.domain.transitions import Entity

__all__ = ["summarise"]

_ENTITY_OF_OPENING = {
    "ACTIVITY_TASK_SCHEDULED": "activities",
    "TIMER_STARTED": "timers",
    "START_CHILD_WORKFLOW_EXECUTION_INITIATED": "children",
    "WORKFLOW_EXECUTION_SIGNALED": "signals",
    "WORKFLOW_EXECUTION_UPDATE_ACCEPTED": "updates",
    "NEXUS_OPERATION_SCHEDULED": "nexus ops",
    "WORKFLOW_TASK_COMPLETED": "workflow tasks",
}


def summarise(path: Path) -> str:
    try:
        run = load_history(path)
    except HistoryError as e:
        return f"{path.name}: INVALID: {e}"
    counts = Counter(
        _ENTITY_OF_OPENING[e.type_name] for e in run.history if e.type_name in _ENTITY_OF_OPENING
    )
    first, last = run.history[0].event_time, run.history[-1].event_time
    took = f"{(last - first).total_nanos / 1e9:.3f}s" if first and last else "?"
    pending = sum(len(run.pending(entity)) for entity in (Entity.ACTIVITY, Entity.TIMER))
    parts = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
    return (
        f"{path.stem:<28} {run.status:<11} {len(run.history):>4} events in {took:>9}"
        f"  {parts}" + (f"; {pending} pending" if pending and not run.is_closed else "")
    )


def main(argv: list[str]) -> int:
    directory = Path(argv[0] if argv else "examples")
    print(f"\nSummary of {directory}/ (workflow id, status, events, span, what it did):")
    for path in sorted(directory.glob("*.json")):
        print("  " + summarise(path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

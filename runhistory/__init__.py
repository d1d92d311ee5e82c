"""runhistory: store, validate and analyse Temporal workflow-run histories as event-sourced
aggregates.

The public names below load lazily, so `import runhistory.domain` pulls in no adapter,
SQLAlchemy or temporalio code.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runhistory.adapters.codec import EventCodec
    from runhistory.adapters.history_json import dump_history, load_history
    from runhistory.app import RunHistory, RunNotFound
    from runhistory.domain.errors import (
        EventOutOfSequence,
        HistoryError,
        IllegalTransition,
        InvalidHistory,
        LimitExceeded,
        MalformedHistory,
        RunKeyError,
        UnknownEventType,
    )
    from runhistory.domain.limits import HistoryLimits
    from runhistory.domain.run import WorkflowRun
    from runhistory.domain.run_key import RunKey
    from runhistory.projections import (
        AuditEntry,
        Finding,
        PendingWork,
        StateTransitions,
        TimelineRow,
        audit,
        chain_links,
        describe,
        findings,
        history_size_bytes,
        pending,
        run_durations,
        state_transitions,
        timeline,
    )

__all__ = [
    "AuditEntry",
    "EventCodec",
    "EventOutOfSequence",
    "Finding",
    "HistoryError",
    "HistoryLimits",
    "IllegalTransition",
    "InvalidHistory",
    "LimitExceeded",
    "MalformedHistory",
    "PendingWork",
    "RunHistory",
    "RunKey",
    "RunKeyError",
    "RunNotFound",
    "StateTransitions",
    "TimelineRow",
    "UnknownEventType",
    "WorkflowRun",
    "audit",
    "chain_links",
    "describe",
    "dump_history",
    "findings",
    "history_size_bytes",
    "load_history",
    "pending",
    "run_durations",
    "state_transitions",
    "timeline",
]

_LOCATIONS = {
    "EventCodec": "runhistory.adapters.codec",
    "dump_history": "runhistory.adapters.history_json",
    "load_history": "runhistory.adapters.history_json",
    "WorkflowRun": "runhistory.domain.run",
    "HistoryLimits": "runhistory.domain.limits",
    "RunKey": "runhistory.domain.run_key",
    "RunHistory": "runhistory.app",
    "RunNotFound": "runhistory.app",
    "audit": "runhistory.projections",
    "chain_links": "runhistory.projections",
    "describe": "runhistory.projections",
    "findings": "runhistory.projections",
    "history_size_bytes": "runhistory.projections",
    "pending": "runhistory.projections",
    "run_durations": "runhistory.projections",
    "state_transitions": "runhistory.projections",
    "timeline": "runhistory.projections",
    "Finding": "runhistory.projections",
    "StateTransitions": "runhistory.projections",
    "TimelineRow": "runhistory.projections",
    "AuditEntry": "runhistory.projections",
    "PendingWork": "runhistory.projections",
    **{
        name: "runhistory.domain.errors"
        for name in (
            "EventOutOfSequence",
            "HistoryError",
            "IllegalTransition",
            "InvalidHistory",
            "LimitExceeded",
            "MalformedHistory",
            "RunKeyError",
            "UnknownEventType",
        )
    },
}


def __getattr__(name: str) -> Any:
    try:
        module = _LOCATIONS[name]
    except KeyError:
        raise AttributeError(f"module 'runhistory' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

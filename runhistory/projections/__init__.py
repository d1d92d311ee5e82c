"""Pure folds over a run's history: what the server would describe, what is pending, how many
state transitions it took, its size, timeline, audit trail, findings and chain links.

Every function takes a `WorkflowRun` (its `.history`) and does no I/O; none imports SQLAlchemy,
temporalio or the adapters.
"""

from __future__ import annotations

from runhistory.projections.audit_log import AuditEntry, audit
from runhistory.projections.chain import ChainLink, ChainLinks, chain_links
from runhistory.projections.checks import DEFAULT_CHECKS, Check, Finding, findings
from runhistory.projections.describe_json import describe
from runhistory.projections.pending_work import PendingItem, PendingWork, pending
from runhistory.projections.size import history_size_bytes
from runhistory.projections.timelines import RunDurations, TimelineRow, run_durations, timeline
from runhistory.projections.transitions import StateTransitions, state_transitions

__all__ = [
    "DEFAULT_CHECKS",
    "AuditEntry",
    "ChainLink",
    "ChainLinks",
    "Check",
    "Finding",
    "PendingItem",
    "PendingWork",
    "RunDurations",
    "StateTransitions",
    "TimelineRow",
    "audit",
    "chain_links",
    "describe",
    "findings",
    "history_size_bytes",
    "pending",
    "run_durations",
    "state_transitions",
    "timeline",
]

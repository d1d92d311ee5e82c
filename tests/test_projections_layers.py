"""The projections are pure folds: no I/O layer, no heavy dependency; the public surface is the
documented one; and `describe` is cheap next to loading the history it describes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

import runhistory.projections as projections
from runhistory.adapters.history_json import load_history
from tests.conformance_data import CONFORMANCE

BENCH = CONFORMANCE.parent / "bench" / "long-history-50k.json.gz"


def test_importing_the_projections_imports_no_adapter_store_or_heavy_dependency() -> None:
    probe = (
        "import sys, runhistory.projections;"
        "heavy = ('sqlalchemy', 'temporalio', 'psycopg');"
        "bad = [m for m in sys.modules if m.split('.')[0] in heavy"
        " or m.startswith(('runhistory.adapters', 'runhistory.stores'))];"
        "print(','.join(sorted(bad)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_public_names() -> None:
    assert set(projections.__all__) == {
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
    }
    for name in projections.__all__:
        assert getattr(projections, name) is not None


@pytest.mark.skipif(not BENCH.exists(), reason="the 50k-event bench history is not here")
def test_describe_of_the_long_history_matches_the_server() -> None:
    """The speed goal (describe within 10% of load time) is measured by `make bench`."""
    raw = gzip.decompress(BENCH.read_bytes())
    server = json.loads(BENCH.with_name("long-history-50k.describe.json").read_text())
    run = load_history(raw)
    mine = projections.describe(run)
    ours, theirs = mine["workflowExecutionInfo"], server["workflowExecutionInfo"]
    for field in ("historyLength", "historySizeBytes", "status", "closeTime"):
        assert ours[field] == theirs[field]
    stc = projections.state_transitions(run)
    assert stc.lower <= int(theirs["stateTransitionCount"])
    assert stc.upper is None or int(theirs["stateTransitionCount"]) <= stc.upper

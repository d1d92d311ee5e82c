"""The dependency rule of DESIGN.md: the domain is pure, and the public surface is curated."""

from __future__ import annotations

import subprocess
import sys

import runhistory


def test_importing_the_domain_imports_no_adapter_store_or_heavy_dependency() -> None:
    probe = (
        "import sys, runhistory.domain.run, runhistory.domain.events;"
        "heavy = ('sqlalchemy', 'temporalio', 'psycopg');"
        "bad = [m for m in sys.modules if m.split('.')[0] in heavy"
        " or m.startswith(('runhistory.adapters', 'runhistory.stores', 'runhistory.projections'))];"
        "print(','.join(sorted(bad)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_public_names_are_exactly_the_documented_ones() -> None:
    expected = {
        "EventCodec",
        "EventOutOfSequence",
        "HistoryError",
        "IllegalTransition",
        "InvalidHistory",
        "MalformedHistory",
        "RunKey",
        "RunKeyError",
        "UnknownEventType",
        "WorkflowRun",
        "dump_history",
        "load_history",
    }
    assert expected <= set(runhistory.__all__)
    for name in runhistory.__all__:
        assert getattr(runhistory, name) is not None

"""RunHistory across processes and stores: what one process stores, another reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runhistory import RunHistory, RunNotFound
from runhistory.app import RunConflict
from tests.conformance_data import checkpoint_histories, final_histories

HISTORIES = dict(final_histories())
pytestmark = pytest.mark.skipif(not HISTORIES, reason="shared/conformance not found")


@pytest.mark.parametrize("scheme", ["sqlite", "file"])
def test_a_new_process_reads_what_another_stored(tmp_path: Path, scheme: str) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}" if scheme == "sqlite" else f"file://{tmp_path}"
    path = HISTORIES["timers/history.json"]
    store = (
        f"from runhistory import RunHistory; RunHistory.open({url!r}).import_history({str(path)!r})"
    )
    subprocess.run([sys.executable, "-c", store], check=True)
    read = (
        f"from runhistory import RunHistory; app = RunHistory.open({url!r});"
        "run = app.get(app.runs()[0].key); print(len(run.history), run.status)"
    )
    out = subprocess.run([sys.executable, "-c", read], check=True, capture_output=True, text=True)
    events = len(json.loads(path.read_text())["events"])
    assert out.stdout.split() == [str(events), "COMPLETED"]


def test_every_history_and_checkpoint_round_trips_through_memory() -> None:
    app = RunHistory.open("memory://")
    for _, checkpoint in checkpoint_histories():  # shorter versions first, tails included
        result = app.import_history(checkpoint["history"])
        assert app.export(result.key.workflow_id, result.key.run_id) == checkpoint["history"]
    for _, path in final_histories():
        doc = json.loads(path.read_text())
        result = app.import_history(doc)
        assert app.import_history(doc).appended == 0
        assert app.export(result.key.workflow_id, result.key.run_id) == doc
        assert len(app.get(result.key).history) == len(doc["events"])


def test_a_conflicting_history_is_refused_and_nothing_is_written() -> None:
    app = RunHistory.open("memory://")
    doc = json.loads(HISTORIES["timers/history.json"].read_text())
    key = app.import_history({"events": doc["events"][:10]}).key
    changed = json.loads(json.dumps(doc))
    changed["events"][4]["eventTime"] = "2030-01-01T00:00:00Z"
    with pytest.raises(RunConflict) as info:
        app.import_history(changed)
    assert info.value.event_id == 5
    assert len(app.export(key.workflow_id, key.run_id)["events"]) == 10


def test_an_unknown_run_is_not_found() -> None:
    with pytest.raises(RunNotFound):
        RunHistory.open("memory://").export("nope")

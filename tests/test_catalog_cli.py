"""`runhistory runs`, in process, through a parser of our own with only its command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from runhistory.adapters.cli_runs import add_runs_commands
from runhistory.app import RunHistory
from runhistory.projections import audit, findings
from tests.test_catalog_support import real_histories


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runhistory")
    add_runs_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv: Sequence[str]) -> int:
    args = _parser().parse_args(["runs", *argv])
    code: int = args.run(args)
    return code


def _lines(out: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.splitlines() if line]


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    app = RunHistory.open(url)
    for _, doc in real_histories(long=False):
        app.import_history(doc)
    app.import_history(real_histories(long=False)[0][1], namespace="staging")
    app.close()
    return url


def test_runs_lists_every_run_caught_up_first(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["--store", store, "--json"]) == 0
    rows = _lines(capsys.readouterr().out)
    app = RunHistory.open(store)
    assert len(rows) == len(app.runs())
    by_key = {(r["namespace"], r["workflow_id"], r["run_id"]): r for r in rows}
    for summary in app.runs():
        key = summary.key
        row = by_key[(key.namespace, key.workflow_id, key.run_id)]
        run = app.get(key)
        assert row["status"] == run.status
        assert row["history_length"] == len(run.history)
        assert row["workflow_type"] == summary.workflow_type
        assert row["findings"] == len(findings(run))
        assert row["start_time"].endswith("Z")
    app.close()


def test_runs_filters_by_status_type_and_namespace(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["--store", store, "--status", "failed", "--json"]) == 0
    failed = _lines(capsys.readouterr().out)
    assert failed and {r["status"] for r in failed} == {"FAILED"}
    kind = failed[0]["workflow_type"]
    assert _run(["--store", store, "--type", kind, "--json", "--no-catch-up"]) == 0
    assert {r["workflow_type"] for r in _lines(capsys.readouterr().out)} == {kind}
    assert _run(["--store", store, "--namespace", "staging", "--json"]) == 0
    assert [r["namespace"] for r in _lines(capsys.readouterr().out)] == ["staging"]
    assert _run(["--store", store, "--status", "open", "--limit", "2", "--json"]) == 0
    assert len(_lines(capsys.readouterr().out)) <= 2


def test_the_table_for_people(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["--store", store, "--status", "timed_out"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["WORKFLOW", "ID", "RUN", "ID"]  # all in "default"
    assert all("TIMED_OUT" in line for line in lines[1:]) and len(lines) > 1
    assert _run(["--store", store, "--namespace", "staging"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "NAMESPACE" and lines[1].startswith("staging ")
    assert _run(["--store", store, "--namespace", "staging", "--status", "paused"]) == 0
    assert capsys.readouterr().out.strip() == "no runs"


def test_audit_and_findings_across_runs(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    app = RunHistory.open(store)
    runs = [app.get(s.key) for s in app.runs()]
    app.close()
    assert _run(["--store", store, "--audit", "--json"]) == 0
    entries = _lines(capsys.readouterr().out)
    assert len(entries) == sum(len(audit(run)) for run in runs)
    assert _run(["--store", store, "--audit", "--action", "terminated", "--json"]) == 0
    terminated = _lines(capsys.readouterr().out)
    assert terminated and {e["action"] for e in terminated} == {"terminated"}
    assert _run(["--store", store, "--audit"]) == 0
    assert "ACTION" in capsys.readouterr().out.splitlines()[0]
    assert _run(["--store", store, "--findings", "--json"]) == 0
    found = _lines(capsys.readouterr().out)
    assert len(found) == sum(len(findings(run)) for run in runs if run.is_closed)
    assert _run(["--store", store, "--findings", "--severity", "error"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[-4:] == ["SEVERITY", "RULE", "EVENTS", "MESSAGE"]
    assert all(" error " in line for line in table[1:])


def test_a_separate_catalog_database(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    view = f"sqlite:///{tmp_path / 'catalog.db'}"
    assert _run(["--store", store, "--view", view, "--prefix", "cat2", "--json"]) == 0
    assert len(_lines(capsys.readouterr().out)) == len(real_histories(long=False)) + 1
    assert (tmp_path / "catalog.db").exists()


def test_usage_and_store_errors(
    tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["--store", store, "--status", "sleeping"]) == 2
    assert "unknown status" in capsys.readouterr().err
    assert _run(["--store", "mysql://nowhere/db"]) == 2
    assert "unsupported store URL" in capsys.readouterr().err
    assert _run(["--store", store, "--view", f"sqlite:///{tmp_path / 'no' / 'such.db'}"]) == 1
    assert capsys.readouterr().err.startswith("error:")
    with pytest.raises(SystemExit) as usage:
        _run(["--store", store, "--audit", "--findings"])
    assert usage.value.code == 2
    with pytest.raises(SystemExit) as helped:
        _run(["--help"])
    assert helped.value.code == 0
    assert "exit codes" in capsys.readouterr().out

"""Reading Temporal's archives: filestore archival files and Cloud export files, made here from
the real-server histories in ../shared/conformance, must give those histories back unchanged."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from runhistory.adapters.archive import iter_archive, iter_archive_histories, read_archive_file
from runhistory.adapters.temporal_extra import INSTALL_HINT, MissingTemporalExtra
from runhistory.app import RunHistory
from runhistory.domain.errors import MalformedHistory
from tests.conformance_data import final_histories

HISTORIES: list[tuple[str, dict[str, Any]]] = [
    (label, json.loads(path.read_text())) for label, path in final_histories()
]


def _batches(history: dict[str, Any]) -> list[dict[str, Any]]:
    """Split a history into batches of 1, 2, 3, 1, 2, 3, ... events, as archived files hold
    a run's persisted batches."""
    events, batches, size = history["events"], [], 1
    while events:
        batches.append({"events": events[:size]})
        events, size = events[size:], size % 3 + 1
    return batches


def _write_filestore(root: Path) -> list[dict[str, Any]]:
    """One `<hash>_<version>.history` file per history, as the filestore archiver names them,
    with a visibility record beside them that is not a history."""
    root.mkdir()
    for i, (_, history) in enumerate(HISTORIES):
        (root / f"{1000 + i}{i}_0.history").write_text(json.dumps(_batches(history)))
    (root / "1700000000_123.visibility").write_text('{"workflowId": "x"}')
    return [history for _, history in HISTORIES]


def test_there_are_real_histories_to_archive() -> None:
    assert len(HISTORIES) > 30


def test_a_filestore_directory_gives_back_every_archived_history(tmp_path: Path) -> None:
    expected = _write_filestore(tmp_path / "archive")
    found = list(iter_archive(tmp_path / "archive"))
    assert [f.history for f in found] == expected
    assert {f.format for f in found} == {"filestore"}
    assert all(f.path.suffix == ".history" and f.index == 0 for f in found)


def test_filestore_histories_import_and_export_unchanged(tmp_path: Path) -> None:
    expected = _write_filestore(tmp_path / "archive")
    app = RunHistory.open("memory://")
    for history in iter_archive_histories(tmp_path / "archive"):
        result = app.import_history(history)
        assert app.export(result.key.workflow_id, result.key.run_id) == history
    assert len(app.runs()) == len(expected)


def test_a_gzipped_archive_file_is_read_the_same(tmp_path: Path) -> None:
    label, history = HISTORIES[0]
    path = tmp_path / "run.history.gz"
    path.write_bytes(gzip.compress(json.dumps(_batches(history)).encode()))
    assert list(iter_archive_histories(path)) == [history], label


def test_plain_history_json_and_a_bare_event_array_are_read_too(tmp_path: Path) -> None:
    _, history = HISTORIES[0]
    (tmp_path / "a.json").write_text(json.dumps(history))
    (tmp_path / "b.json").write_text(json.dumps(history["events"]))
    (tmp_path / "c.json").write_text(json.dumps({"history": history}))
    found = list(iter_archive(tmp_path))
    assert [f.history for f in found] == [history] * 3
    assert {f.format for f in found} == {"json"}


def test_a_cloud_export_file_gives_back_every_history_in_it(tmp_path: Path) -> None:
    pytest.importorskip("temporalio")
    from google.protobuf import json_format
    from temporalio.api.export.v1 import WorkflowExecution, WorkflowExecutions
    from temporalio.api.history.v1 import History

    items = [WorkflowExecution(history=json_format.ParseDict(h, History())) for _, h in HISTORIES]
    path = tmp_path / "export.pb"
    path.write_bytes(WorkflowExecutions(items=items).SerializeToString())
    found = read_archive_file(path)
    assert [f.history for f in found] == [h for _, h in HISTORIES]
    assert [f.index for f in found] == list(range(len(HISTORIES)))
    assert {f.format for f in found} == {"export"}


def test_the_newer_export_format_reads_its_workflows_and_skips_its_activities(
    tmp_path: Path,
) -> None:
    pytest.importorskip("temporalio")
    from google.protobuf import json_format
    from temporalio.api.export.v1 import ActivityExecution, ExportedExecutions, WorkflowExecution
    from temporalio.api.history.v1 import History

    histories = [h for _, h in HISTORIES[:3]]
    message = ExportedExecutions(
        workflows=[
            WorkflowExecution(history=json_format.ParseDict(h, History())) for h in histories
        ],
        activities=[ActivityExecution()],
    )
    path = tmp_path / "export.bin"
    path.write_bytes(message.SerializeToString())
    assert list(iter_archive_histories(path)) == histories


def test_an_export_file_rendered_as_json_is_read_too(tmp_path: Path) -> None:
    histories = [h for _, h in HISTORIES[:2]]
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"items": [{"history": h} for h in histories]}))
    assert list(iter_archive_histories(path)) == histories


def test_a_file_that_is_no_archive_is_refused_or_skipped_when_asked(tmp_path: Path) -> None:
    pytest.importorskip("temporalio")
    _write_filestore(tmp_path / "archive")
    bad = tmp_path / "archive" / "zz_0.history"
    bad.write_text('[{"events": [')
    with pytest.raises(MalformedHistory, match=r"zz_0\.history: not valid JSON"):
        list(iter_archive_histories(tmp_path / "archive"))
    skipped: list[Path] = []
    found = list(
        iter_archive_histories(tmp_path / "archive", on_error=lambda p, e: skipped.append(p))
    )
    assert skipped == [bad] and len(found) == len(HISTORIES)

    binary = tmp_path / "junk.bin"
    binary.write_bytes(b"\xff\xfe\x00 not a proto")
    with pytest.raises(MalformedHistory, match="not an export file"):
        read_archive_file(binary)
    with pytest.raises(MalformedHistory, match="batch 0 has no events"):
        (tmp_path / "odd.json").write_text('[{"events": 3}]')
        read_archive_file(tmp_path / "odd.json")


def test_reading_an_export_file_without_temporalio_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "export.pb"
    path.write_bytes(b"\x0a\x00")
    monkeypatch.setitem(sys.modules, "temporalio.api.export.v1", None)
    with pytest.raises(MissingTemporalExtra) as raised:
        read_archive_file(path)
    assert str(raised.value).endswith(INSTALL_HINT)
    assert isinstance(raised.value, ImportError)

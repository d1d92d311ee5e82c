"""Histories from Temporal's archives: the filestore archiver's files and Cloud export files.

- **Filestore archival** (self-hosted, `file://` archival URI): one file per run,
  `<hash>_<closeFailoverVersion>.history`, holding a JSON array of the run's persisted batches,
  `[{"events": [...]}, ...]` (server `common/archiver/filestore`, `codec.JSONPBEncoder`). The
  batches are concatenated into one history.
- **Cloud export** (Workflow History Export): binary protobuf `temporal.api.export.v1
  .WorkflowExecutions{items: [{history}]}`, one or more closed runs per file. The newer
  `ExportedExecutions{workflows, activities}` has the same field 1, so it reads the same (its
  standalone activities are not workflow histories and are skipped). Decoding needs temporalio's
  generated classes (the `temporal` extra); each history is converted with `MessageToDict`, so
  it is exactly what `WorkflowHistory.to_json_dict()` would give.

Plain history JSON (`{"events": [...]}` or a bare array of events) and gzip-compressed files of
any of these are read too. Every history yielded is acceptable to `RunHistory.import_history`.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from runhistory.adapters.temporal_extra import MissingTemporalExtra
from runhistory.domain.errors import MalformedHistory

__all__ = ["ArchivedHistory", "iter_archive", "iter_archive_histories", "read_archive_file"]

_GZIP_MAGIC = b"\x1f\x8b"
_SKIPPED_SUFFIXES = (".visibility",)  # the filestore's visibility records sit beside histories

OnError = Callable[[Path, Exception], None]


@dataclass(frozen=True, slots=True)
class ArchivedHistory:
    """One history found in an archive: the file, its position there, and its format
    ("filestore", "export" or "json")."""

    path: Path
    index: int
    format: str
    history: dict[str, Any]


def iter_archive_histories(
    path: str | os.PathLike[str], *, on_error: OnError | None = None
) -> Iterator[dict[str, Any]]:
    """Every history in an archive file, or in every file under a directory (in name order)."""
    for found in iter_archive(path, on_error=on_error):
        yield found.history


def iter_archive(
    path: str | os.PathLike[str], *, on_error: OnError | None = None
) -> Iterator[ArchivedHistory]:
    """Like `iter_archive_histories`, saying where each history came from. A file that cannot
    be read raises MalformedHistory (or OSError), unless `on_error(path, error)` is given: then
    it is told and the file skipped."""
    root = Path(path)
    for file in _files(root) if root.is_dir() else [root]:
        try:
            found = read_archive_file(file)
        except (MalformedHistory, OSError) as e:
            if on_error is None:
                raise
            on_error(file, e)
            continue
        yield from found


def _files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and not name.endswith(_SKIPPED_SUFFIXES):
                yield Path(dirpath) / name


def read_archive_file(path: Path) -> list[ArchivedHistory]:
    """The histories in one archive file, whatever its format."""
    data = path.read_bytes()
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise MalformedHistory(f"{path}: not a readable gzip file: {e}") from None
    head = data.lstrip()[:1]
    if head in (b"[", b"{"):
        fmt, histories = _from_json(path, data)
    else:
        fmt, histories = "export", _from_export(path, data)
    return [ArchivedHistory(path, i, fmt, h) for i, h in enumerate(histories)]


def _from_json(path: Path, data: bytes) -> tuple[str, list[dict[str, Any]]]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise MalformedHistory(f"{path}: not valid JSON: {e}") from None
    if isinstance(doc, list):
        if all(isinstance(b, Mapping) and "events" in b and "eventId" not in b for b in doc):
            return "filestore", ([_concat(path, doc)] if doc else [])
        return "json", [{"events": doc}]  # a bare array of events
    if isinstance(doc, Mapping):
        if "events" in doc or "history" in doc:  # a history, or a GetWorkflowExecutionHistory reply
            history = doc if "events" in doc else doc["history"]
            if isinstance(history, Mapping):
                return "json", [dict(history)]
        items = doc.get("items", doc.get("workflows"))
        if isinstance(items, list):  # an export file rendered as proto3 JSON
            return "export", [_history_of(path, i, item) for i, item in enumerate(items)]
    raise MalformedHistory(
        f"{path}: neither a history, an archive of history batches nor an export file"
    )


def _concat(path: Path, batches: list[Any]) -> dict[str, Any]:
    events: list[Any] = []
    for i, batch in enumerate(batches):
        batch_events = batch.get("events")
        if not isinstance(batch_events, list):
            raise MalformedHistory(f"{path}: batch {i} has no events array", path=f"$[{i}].events")
        events.extend(batch_events)
    return {"events": events}


def _history_of(path: Path, index: int, item: Any) -> dict[str, Any]:
    history = item.get("history") if isinstance(item, Mapping) else None
    if not isinstance(history, Mapping):
        raise MalformedHistory(
            f"{path}: execution {index} has no history", path=f"$.items[{index}]"
        )
    return {"events": list(history.get("events") or [])}


def _from_export(path: Path, data: bytes) -> list[dict[str, Any]]:
    try:
        from google.protobuf.json_format import MessageToDict
        from google.protobuf.message import DecodeError
        from temporalio.api.export.v1 import WorkflowExecutions
    except ImportError:
        raise MissingTemporalExtra(f"reading the Cloud export file {path}") from None
    try:
        executions = WorkflowExecutions.FromString(data)
    except DecodeError as e:
        raise MalformedHistory(f"{path}: not JSON, and not an export file either: {e}") from None
    histories: list[dict[str, Any]] = []
    for item in executions.items:
        history: dict[str, Any] = MessageToDict(item.history)
        histories.append({"events": history.get("events", [])})
    return histories

"""Where stored events live in a files root, and the bytes of their lines.

    <root>/notifications.jsonl                      commit log of the events table
    <root>/runs/<namespace>/<workflow>/<run>.jsonl  a run's history, one Temporal event a line
    <root>/runs/<namespace>/<workflow>/<run>.meta.json   its key and originator id
    <root>/aggregates/<originator>.jsonl            any other aggregate's events
    <root>/snapshots.jsonl, <root>/snapshots/<originator>.jsonl   the snapshots table
    <root>/tracking/<application>.jsonl             positions processed, per upstream app

Every name is made by `names.encode_name`, so no id can escape the root or collide.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson
from eventsourcing.persistence import OperationalError

from runhistory.stores.columns import history_columns
from runhistory.stores.files.names import encode_name

__all__ = [
    "LOCK_FILE",
    "TABLES",
    "RunPlacement",
    "Table",
    "aggregate_file",
    "aggregate_line",
    "aggregate_state",
    "history_line",
    "is_run_file",
    "join_run_key",
    "meta_file",
    "place_run",
    "run_file",
    "run_key_json",
    "tracking_file",
    "tracking_line",
]

LOCK_FILE = ".lock"
RUNS_DIR = "runs"
TRACKING_DIR = "tracking"
RUN_SUFFIX = ".jsonl"
META_SUFFIX = ".meta.json"
# The key `runhistory.adapters.mapper.HistoryMapper` adds to a run's started event; stores sit
# below adapters, so it is spelled out here as in `runhistory.stores.columns`.
RUN_KEY_FIELD = "runKey"
_RUN_KEY_SEP = b',"' + RUN_KEY_FIELD.encode() + b'":'


@dataclass(frozen=True, slots=True)
class Table:
    """An eventsourcing "table": a commit log and the directory of its aggregates' files.
    The events table puts runs in `runs/` and appends versions without gaps; the snapshots
    table takes any new version (a snapshot may be taken of an earlier version)."""

    purpose: str
    log: str
    data_dir: str
    routes_runs: bool
    contiguous: bool


TABLES = {
    "events": Table("events", "notifications.jsonl", "aggregates", True, True),
    "snapshots": Table("snapshots", "snapshots.jsonl", "snapshots", False, False),
}


def is_run_file(path: str) -> bool:
    return path.startswith(RUNS_DIR + "/")


def run_file(namespace: str, workflow_id: str, run_id: str) -> str:
    parts = (RUNS_DIR, encode_name(namespace), encode_name(workflow_id), encode_name(run_id))
    return "/".join(parts) + RUN_SUFFIX


def meta_file(run_path: str) -> str:
    return run_path[: -len(RUN_SUFFIX)] + META_SUFFIX


def aggregate_file(table: Table, originator_key: str) -> str:
    return f"{table.data_dir}/{encode_name(originator_key)}.jsonl"


def tracking_file(application_name: str) -> str:
    return f"{TRACKING_DIR}/{encode_name(application_name)}.jsonl"


def tracking_line(application_name: str, notification_id: int) -> bytes:
    return orjson.dumps({"applicationName": application_name, "notificationId": notification_id})


def _is_json_line(data: bytes) -> bool:
    if b"\n" in data or b"\r" in data:
        return False
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


def history_line(state: bytes) -> bytes | None:
    """A later event of a run is its state as is, when that is one JSON object on one line."""
    if state[:1] == b"{" and state[-1:] == b"}" and _is_json_line(state):
        return state
    return None


@dataclass(frozen=True, slots=True)
class RunPlacement:
    """A run's files, the first line (the started event without `runKey`), and its metadata."""

    path: str
    line: bytes
    run_key: dict[str, Any]

    @property
    def meta_path(self) -> str:
        return meta_file(self.path)

    def metadata(self, originator_id: str) -> bytes:
        doc = {"originatorId": originator_id, RUN_KEY_FIELD: self.run_key}
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def place_run(topic: str, state: bytes) -> RunPlacement | None:
    """Where a run goes, when `state` is a readable started event with a `runKey` that can be
    taken off and put back byte for byte; otherwise None (the aggregate is stored generically)."""
    columns = history_columns(topic, state)
    if columns is None or columns.run_key is None:
        return None
    run_key = columns.document[RUN_KEY_FIELD]
    sidecar = _RUN_KEY_SEP + orjson.dumps(run_key) + b"}"
    if not state.endswith(sidecar):
        return None
    line = state[: -len(sidecar)] + b"}"
    if history_line(line) is None or join_run_key(line, orjson.dumps(run_key)) != state:
        return None
    key = columns.run_key
    return RunPlacement(run_file(key.namespace, key.workflow_id, key.run_id), line, run_key)


def join_run_key(line: bytes, run_key_json: bytes) -> bytes:
    """The started event's state: its line with the `runKey` put back as the last key."""
    return line[:-1] + _RUN_KEY_SEP + run_key_json + b"}"


def run_key_json(metadata: bytes, path: str) -> bytes:
    """The exact `runKey` JSON kept in a run's metadata file."""
    try:
        doc = orjson.loads(metadata)
        return orjson.dumps(doc[RUN_KEY_FIELD])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise OperationalError(f"unreadable run metadata: {path}") from None


def _line_head(version: int, topic: str) -> bytes:
    return b'{"originatorVersion":%d,"topic":%s,' % (version, orjson.dumps(topic))


def aggregate_line(version: int, topic: str, state: bytes) -> bytes:
    """A generic event line: the state inline when it is JSON (readable), else base64."""
    head = _line_head(version, topic)
    if _is_json_line(state):
        return head + b'"state":' + state + b"}"
    return head + b'"stateBase64":"' + base64.b64encode(state) + b'"}'


def aggregate_state(line: bytes, version: int, topic: str, path: str) -> bytes:
    """The exact state bytes back from a generic event line."""
    head = _line_head(version, topic)
    body = line[len(head) :] if line.startswith(head) else b""
    if body.startswith(b'"state":') and body.endswith(b"}"):
        return body[len(b'"state":') : -1]
    if body.startswith(b'"stateBase64":"') and body.endswith(b'"}'):
        try:
            return base64.b64decode(body[len(b'"stateBase64":"') : -2], validate=True)
        except binascii.Error:
            pass
    raise OperationalError(f"unreadable event line in {path} (version {version})")

"""Any id from outside maps to a safe, distinct, reversible file name, and hostile workflow ids
are stored and read back faithfully without anything leaving the store's root."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given
from hypothesis import strategies as st

from runhistory.domain.run_key import RunKey
from runhistory.stores.files import FileApplicationRecorder, decode_name, encode_name
from runhistory.stores.files.layout import run_file
from runhistory.stores.files.names import MAX_NAME, is_hashed

SAFE = re.compile(r"[a-z0-9._!%=~-]+")
DEVICES = {"con", "prn", "aux", "nul"} | {f"{s}{n}" for s in ("com", "lpt") for n in range(10)}
NAME_MAX = 255  # bytes in one path component on common filesystems

any_text = st.text(st.characters(exclude_categories=()), max_size=300)  # surrogates too
long_text = st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=20), st.integers(50, 600))
ids = st.one_of(any_text, long_text, st.sampled_from(["", ".", "..", "CON", "nul.txt", "a."]))


def assert_safe_component(name: str) -> None:
    assert SAFE.fullmatch(name), name
    assert name.isascii() and name == name.lower()
    assert name not in (".", "..") and not name.startswith(".") and not name.endswith(".")
    assert name.split(".")[0] not in DEVICES
    assert len(name) <= MAX_NAME
    assert len((name + ".meta.json").encode()) <= NAME_MAX


@given(ids)
def test_every_id_becomes_one_safe_path_component(value: str) -> None:
    assert_safe_component(encode_name(value))


@given(ids)
def test_a_short_name_decodes_to_exactly_its_id(value: str) -> None:
    name = encode_name(value)
    if is_hashed(name):
        assert decode_name(name) is None
        assert len(value) > MAX_NAME // 12  # only long ids are hashed
    else:
        assert decode_name(name) == value


@given(ids, ids)
def test_distinct_ids_get_distinct_names_even_ignoring_case(a: str, b: str) -> None:
    if a != b:
        assert encode_name(a).casefold() != encode_name(b).casefold()


@given(st.text(st.characters(categories=["Lu", "Ll", "Mn", "Lo"]), min_size=1, max_size=30))
def test_unicode_normalisation_twins_get_distinct_names(value: str) -> None:
    nfc, nfd = unicodedata.normalize("NFC", value), unicodedata.normalize("NFD", value)
    assert (encode_name(nfc) == encode_name(nfd)) == (nfc == nfd)


@given(ids, ids, ids)
def test_a_run_path_never_leaves_the_root(namespace: str, workflow_id: str, run_id: str) -> None:
    root = Path("/srv/store")
    relative = run_file(namespace, workflow_id, run_id)
    parts = Path(relative).parts
    assert len(parts) == 4 and parts[0] == "runs" and not Path(relative).is_absolute()
    for part in parts[1:]:
        assert_safe_component(part.removesuffix(".jsonl"))
    resolved = Path(os.path.normpath(root / relative))
    assert resolved.parent.parent.parent.parent == root


def test_ordinary_ids_stay_readable() -> None:
    assert encode_name("order-123") == "order-123"
    assert encode_name("default") == "default"
    assert encode_name("Order-123") == "!order-123"
    assert encode_name("a/b") == "a%2fb"


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("", "="),
        (".", "%2e"),
        ("..", "%2e%2e"),
        ("../../etc/passwd", "%2e.%2f..%2fetc%2fpasswd"),
        ("con", "%63on"),
        ("nul.txt", "%6eul.txt"),
        ("com1", "%63om1"),
        ("a\\b", "a%5cb"),
        ("a\x00b", "a%00b"),
        ("trailing.", "trailing%2e"),
    ],
)
def test_dangerous_ids_are_escaped(value: str, name: str) -> None:
    assert encode_name(value) == name
    assert decode_name(name) == value


def test_ten_thousand_character_ids_get_short_distinct_names() -> None:
    a, b = "w" * 9_999 + "a", "w" * 9_999 + "b"
    assert encode_name(a) != encode_name(b)
    assert len(encode_name(a)) <= MAX_NAME and is_hashed(encode_name(a))


@pytest.mark.parametrize("name", ["A", "%41", "%2", "!", "!1", "a~", "%c3", "..", ".x", "x."])
def test_a_name_the_encoder_would_not_write_does_not_decode(name: str) -> None:
    if is_hashed(name):
        assert decode_name(name) is None
    else:
        with pytest.raises(ValueError, match="not a runhistory file name"):
            decode_name(name)


HOSTILE = [
    "../../../../etc/passwd",
    "/etc/passwd",
    "..",
    ".",
    "",
    "a/../../b",
    "..\\..\\windows\\system32",
    "C:\\Windows",
    "nul\x00byte",
    "tab\tnew\nline\r\x1b[31m",
    "CON",
    "con",
    "nul.txt",
    "LPT9",
    "Order-1",
    "order-1",
    "ORDER-1",
    unicodedata.normalize("NFC", "Åström"),
    unicodedata.normalize("NFD", "Åström"),
    "emoji-🐈-哈",
    " spaced ",
    "dots...",
    "x" * 10_000,
    "x" * 9_999 + "y",
    "é" * 5_000,
]


def _started_event(workflow_id: str, run_id: str, namespace: str) -> StoredEvent:
    key = RunKey(workflow_id, run_id, namespace)
    doc = {
        "eventId": "1",
        "eventTime": "2026-01-01T00:00:00Z",
        "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
        "taskId": "1",
        "workflowExecutionStartedEventAttributes": {
            "workflowType": {"name": "T"},
            "workflowId": workflow_id,
            "originalExecutionRunId": run_id,
        },
        "runKey": {"namespace": namespace, "workflowId": workflow_id, "runId": run_id},
    }
    topic = "runhistory:WorkflowExecutionStarted"
    return StoredEvent(key.aggregate_id, 1, topic, orjson.dumps(doc))


def test_hostile_workflow_ids_are_stored_and_read_back_without_leaving_the_root(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    recorder = FileApplicationRecorder(root)
    events = [_started_event(wid, wid[::-1] or "r", wid[:50] or "ns") for wid in HOSTILE]
    for event in events:
        recorder.insert_events([event])

    reopened = FileApplicationRecorder(root)
    for event in events:
        assert reopened.select_events(event.originator_id) == [event]
    run_files = sorted(root.glob("runs/*/*/*.jsonl"))
    assert len(run_files) == len(HOSTILE)  # one file each: nothing merged, nothing generic
    assert not (root / "aggregates").exists()
    metas = [f.with_name(f.name.removesuffix(".jsonl") + ".meta.json") for f in run_files]
    kept = {orjson.loads(m.read_bytes())["runKey"]["workflowId"] for m in metas}
    assert kept == set(HOSTILE)  # the full ids, even where the names are hashed
    assert [p.name for p in tmp_path.iterdir()] == ["store"]
    for directory, dirs, files in os.walk(root / "runs"):
        for name in dirs + files:
            assert Path(directory, name).resolve().is_relative_to(root.resolve())
            assert_safe_component(name.removesuffix(".jsonl").removesuffix(".meta.json"))
    recorder.close()
    reopened.close()

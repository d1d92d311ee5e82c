"""Hostile input: only HistoryError subclasses may escape `load_history`, and hostile workflow ids
are stored faithfully, separately, and never outside the files store's root.

The fuzz runs hypothesis on mutated real histories, arbitrary JSON values and arbitrary bytes
(short form: a few hundred examples in all; `RUNHISTORY_LONG=1`: ten times as many). The
pathological inputs (deep nesting, huge numbers, invalid UTF-8, NUL, empty, zero events) each
have their own test, as do the hostile ids (`../x`, `/abs`, NUL, control characters, 10,000
characters, Unicode normalisation twins, case twins, `CON`, `a/b`, `..`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import unicodedata
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runhistory.adapters.history_json import load_history
from runhistory.domain.errors import HistoryError, LimitExceeded, MalformedHistory
from runhistory.domain.limits import NO_LIMITS, HistoryLimits
from tests.reliability.support import (
    ROOT,
    check_store,
    key_of,
    long_or_short,
    open_store,
    renamed,
    small_histories,
)

EXAMPLES = long_or_short(2000, 150, "RUNHISTORY_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("RUNHISTORY_LONG"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
EVENT_KEYS = st.sampled_from(
    ["eventId", "eventType", "eventTime", "taskId", "workerMayIgnore", "attributes"]
)


# the validator's modes: strict (Temporal's limits on), lenient (none), collect-all, and tiny
# limits so that the limit checks meet hostile values too
TINY = HistoryLimits(max_id_length=8, max_payload_bytes=16, max_events=5, max_history_bytes=900)
MODES: list[dict[str, Any]] = [
    {},
    {"strict": False},
    {"collect_all": True},
    {"strict": False, "collect_all": True},
    {"limits": TINY},
    {"limits": TINY, "collect_all": True},
]
MODE = st.sampled_from(MODES)


def _only_history_errors(source: Any, mode: dict[str, Any] | None = None) -> None:
    with contextlib.suppress(HistoryError):
        load_history(source, **(mode or {}))


def _mutate(doc: dict[str, Any], data: st.DataObject) -> None:
    """One random change somewhere in a real history."""
    events: list[Any] = doc["events"]
    op = data.draw(st.sampled_from(["replace", "delete", "swap", "duplicate", "drop", "wrap"]))
    index = data.draw(st.integers(0, len(events) - 1))
    if op == "swap":
        other = data.draw(st.integers(0, len(events) - 1))
        events[index], events[other] = events[other], events[index]
        return
    if op == "duplicate":
        events.insert(index, events[index])
        return
    if op == "drop":
        del events[index]
        return
    node: Any = events[index]
    while isinstance(node, (dict, list)) and node and data.draw(st.booleans()):
        child = data.draw(
            st.sampled_from(list(node.keys()) if isinstance(node, dict) else list(range(len(node))))
        )
        if not isinstance(node[child], (dict, list)) or not node[child]:
            break
        node = node[child]
    if not isinstance(node, (dict, list)) or not node:
        return
    key = data.draw(
        st.sampled_from(list(node.keys()) if isinstance(node, dict) else list(range(len(node))))
    )
    if op == "delete":
        del node[key]
    elif op == "wrap":
        node[key] = [node[key]]
    elif isinstance(node, dict) and data.draw(st.booleans()):
        node[data.draw(EVENT_KEYS)] = data.draw(JSON)
    else:
        node[key] = data.draw(JSON)


@FUZZ
@given(st.data())
def test_mutated_real_histories_raise_only_history_errors(data: st.DataObject) -> None:
    histories = small_histories()
    _, raw = histories[data.draw(st.integers(0, len(histories) - 1))]
    doc = orjson.loads(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(doc, data)
    mode = data.draw(MODE)
    _only_history_errors(doc, mode)
    _only_history_errors(json.dumps(doc).encode(), mode)


@FUZZ
@given(JSON, MODE)
def test_arbitrary_json_raises_only_history_errors(value: Any, mode: dict[str, Any]) -> None:
    if isinstance(value, (dict, list)):
        _only_history_errors(value, mode)
        _only_history_errors({"events": [value]}, mode)
    _only_history_errors(json.dumps(value).encode(), mode)  # stdlib: orjson refuses > 2^64
    _only_history_errors(json.dumps({"events": [value]}).encode(), mode)


@FUZZ
@given(st.binary(max_size=200), MODE)
def test_arbitrary_bytes_raise_only_history_errors(raw: bytes, mode: dict[str, Any]) -> None:
    _only_history_errors(raw, mode)
    _only_history_errors(b'{"events": [' + raw + b"]}", mode)


def test_the_atheris_harness_runs_its_seed_corpus(tmp_path: Path) -> None:
    """The short form of tools/fuzz_history.py (the long one is in docs/reliability.md): its
    target takes every seed input, whole and cut short, without an escape."""
    pytest.importorskip("atheris", reason="atheris is not installed (pip install '.[fuzz]')")
    spec = importlib.util.spec_from_file_location("fuzz_history", ROOT / "tools/fuzz_history.py")
    assert spec is not None and spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    assert harness.write_seed_corpus(tmp_path) >= 8
    seeds = sorted(tmp_path.iterdir())[:: max(1, len(list(tmp_path.iterdir())) // 40)]
    for path in seeds:
        data = path.read_bytes()
        for cut in (len(data), len(data) // 2, 7):
            harness.test_one_input(data[:cut])


def _raw() -> bytes:
    return orjson.dumps(renamed(small_histories()[0][1], "hostile"))


@pytest.mark.parametrize("where", ["top", "events", "inside-event"])
def test_deeply_nested_json_text_is_refused_as_malformed(where: str) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    raw = {
        "top": deep,
        "events": b'{"events": ' + deep + b"}",
        "inside-event": _raw().replace(b'"eventId"', b'"x":' + deep + b',"eventId"', 1),
    }[where]
    with pytest.raises(MalformedHistory):
        load_history(raw)


def test_deeply_nested_values_are_refused_as_malformed() -> None:
    doc = orjson.loads(_raw())
    deep: list[Any] = []
    for _ in range(10_000):
        deep = [deep]
    doc["events"][0]["workflowExecutionStartedEventAttributes"]["input"] = deep
    with pytest.raises(MalformedHistory):
        load_history(doc)


@pytest.mark.parametrize(
    "number", [b"1" + b"0" * 400, b"-1" + b"0" * 30, b"1e400", b"18446744073709551616"]
)
def test_huge_event_ids_are_refused(number: bytes) -> None:
    doc = orjson.loads(_raw())
    doc["events"][1]["eventId"] = "@@"
    with pytest.raises(HistoryError):
        load_history(orjson.dumps(doc).replace(b'"@@"', number))


def test_a_huge_number_in_an_int_field_is_refused() -> None:
    doc = orjson.loads(_raw())
    doc["events"][0]["workflowExecutionStartedEventAttributes"]["attempt"] = 10**30
    with pytest.raises(MalformedHistory):
        load_history(doc)


def test_invalid_utf8_is_refused_with_its_byte_offset() -> None:
    raw = _raw().replace(b"hostile", b"host\xffile", 1)
    with pytest.raises(MalformedHistory, match="not UTF-8"):
        load_history(raw)


def test_an_empty_file_and_a_history_of_no_events_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    sources: list[Any] = [empty, b"", b"   ", b"{}", b'{"events": []}', b"[]", {"events": []}]
    for source in sources:
        with pytest.raises(MalformedHistory):
            load_history(source)


def test_a_raw_nul_byte_is_refused_and_an_escaped_nul_round_trips(tmp_path: Path) -> None:
    with pytest.raises(MalformedHistory):
        load_history(_raw().replace(b"hostile", b"host\x00ile", 1))
    doc = orjson.loads(_raw())
    doc["events"][0]["workflowExecutionStartedEventAttributes"]["identity"] = "a\x00b"
    with open_store("sqlite") as store:
        app = store.open()
        app.import_history(doc)
        assert check_store(app, [doc]) == (1, 0)
        app.close()


COMPOSED = unicodedata.normalize("NFC", "caf\u00e9")
DECOMPOSED = unicodedata.normalize("NFD", "caf\u00e9")
HOSTILE_IDS = [
    "../x",
    "../../../../../../tmp/escaped",
    "/abs",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "..",
    ".",
    ".hidden",
    "trailing.",
    "nul\x00inside",
    "ctl\x01\x07\x1b[31m\n\r\t",
    "x" * 10_000,
    COMPOSED,
    DECOMPOSED,
    "CON",
    "con",
    "nul.txt",
    "Case",
    "case",
    "",  # not a valid id: the started event then names no workflow (RunKeyError)
    " ",
    "\u202eRTL",
    "emoji \U0001f600",
    "%2e%2e",
    "!x",
    "~" + "0" * 40,
]


@pytest.mark.parametrize("kind", ["files", "sqlite"])
def test_hostile_workflow_ids_round_trip_separately_inside_the_root(kind: str) -> None:
    assert COMPOSED != DECOMPOSED
    raw = small_histories()[0][1]
    with open_store(kind) as store:
        assert store.root is not None
        outside_before = sorted(os.listdir(store.root.parent))
        app = store.open()
        docs = []
        for wid in HOSTILE_IDS:
            doc = renamed(raw, wid)
            if not wid:
                with pytest.raises(HistoryError):
                    app.import_history(doc)
                continue
            if len(wid.encode()) > 1000:  # strict mode: past Temporal's limit, nothing written
                with pytest.raises(LimitExceeded):
                    app.import_history(doc)
                assert not app.recorder.select_events(key_of(doc).aggregate_id)
            # without the limits, every id is stored as it is, and stays inert
            assert app.import_history(doc, limits=NO_LIMITS).created, repr(wid)
            docs.append(doc)
        assert check_store(app, docs) == (len(docs), 0)
        for doc in docs:
            wid = doc["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
            assert app.export(wid) == doc, repr(wid[:40])  # found by workflow id alone
        stored_ids = sorted(s.key.workflow_id for s in app.runs())
        assert stored_ids == sorted(wid for wid in HOSTILE_IDS if wid)
        app.close()
        root = store.root.resolve()
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                path = Path(folder, name)
                assert path.resolve().is_relative_to(root), path
                assert "\x00" not in name and "/" not in name
        assert sorted(os.listdir(store.root.parent)) == outside_before
        assert not Path("/tmp/escaped").exists()


def test_an_escaped_lone_surrogate_is_refused_or_stored() -> None:
    raw = _raw().replace(b'"identity":"', b'"identity":"\\ud800', 1)
    assert b"\\ud800" in raw
    with open_store("sqlite") as store:
        app = store.open()
        try:
            app.import_history(raw)
        except HistoryError:
            return
        finally:
            app.close()
        assert app.export("hostile") == orjson.loads(raw)

"""Strict mode enforces Temporal's own limits (runhistory.domain.limits): each at its boundary
(exactly the limit passes, one over fails with LimitExceeded naming the event and the field),
the server's terminating transaction past the history limits, and the overrides."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from runhistory.adapters.history_json import load_history
from runhistory.domain import messages as m
from runhistory.domain.errors import HistoryError, InvalidHistory, LimitExceeded
from runhistory.domain.limits import (
    NO_LIMITS,
    TEMPORAL_LIMITS,
    HistoryLimits,
    payloads_size,
)
from tests.conformance_data import CONFORMANCE
from tests.reliability.support import ROOT

MiB = 1024 * 1024


@cache
def _raw(scenario: str) -> bytes:
    return (CONFORMANCE / scenario / "history.json").read_bytes()


def _doc(scenario: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(_raw(scenario))
    return doc


def _activity() -> tuple[dict[str, Any], dict[str, Any]]:
    """A real one-activity history and its ACTIVITY_TASK_SCHEDULED attributes (event 5)."""
    doc = _doc("one_activity_eager")
    return doc, doc["events"][4]["activityTaskScheduledEventAttributes"]


def _refused(source: Any, **kwargs: Any) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as caught:
        load_history(source, **kwargs)
    return caught.value


# --- ids ------------------------------------------------------------------------------------


def test_the_defaults_are_temporals() -> None:
    assert HistoryLimits(1000, 2 * MiB, 51_200, 50 * MiB) == TEMPORAL_LIMITS
    assert not NO_LIMITS.enabled


@pytest.mark.parametrize(
    ("ok", "over"),
    [("x" * 1000, "x" * 1001), ("é" * 500, "é" * 500 + "x"), ("€" * 333 + "x", "€" * 334)],
    ids=["ascii", "2-byte", "3-byte"],
)
def test_a_workflow_id_may_have_1000_utf8_bytes_not_1001(ok: str, over: str) -> None:
    doc = _doc("one_activity_eager")
    doc["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"] = ok
    assert load_history(copy.deepcopy(doc)).key.workflow_id == ok  # type: ignore[union-attr]
    doc["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"] = over
    error = _refused(doc)
    assert (error.event_id, error.limit, error.actual) == (1, 1000, len(over.encode()))
    assert error.limit_name == "limit.maxIDLength" and error.code == "limit-exceeded"
    assert "event 1 WORKFLOW_EXECUTION_STARTED" in str(error)


def test_the_workflow_id_and_namespace_given_by_the_caller_are_limited_too() -> None:
    doc = _doc("one_activity_eager")
    del doc["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    assert load_history(copy.deepcopy(doc), workflow_id="w" * 1000, namespace="n" * 1000)
    assert _refused(copy.deepcopy(doc), workflow_id="w" * 1001).field == "workflowId"
    assert _refused(doc, workflow_id="w", namespace="n" * 1001).field == "namespace"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("activityId",), "activityTaskScheduledEventAttributes.activityId"),
        (("activityType", "name"), "activityTaskScheduledEventAttributes.activityType.name"),
        (("taskQueue", "name"), "activityTaskScheduledEventAttributes.taskQueue.name"),
    ],
)
def test_activity_ids_type_names_and_task_queues_are_limited(
    path: tuple[str, ...], field: str
) -> None:
    for length in (1000, 1001):
        doc, attrs = _activity()
        *parents, last = path
        for key in parents:
            attrs = attrs[key]
        attrs[last] = "a" * length
        if length == 1000:
            load_history(doc)
            continue
        error = _refused(doc)
        assert (error.event_id, error.event_type) == (5, "ACTIVITY_TASK_SCHEDULED")
        assert error.field == field


def test_timer_ids_are_limited() -> None:
    doc = _doc("workflow_terminated")
    doc["events"][4]["timerStartedEventAttributes"]["timerId"] = "t" * 1001
    error = _refused(doc)
    assert (error.event_id, error.field) == (5, "timerStartedEventAttributes.timerId")


def test_signal_names_are_not_limited_as_the_server_does_not_always_check_them() -> None:
    doc = _doc("signals_many_batched")
    doc["events"][2]["workflowExecutionSignaledEventAttributes"]["signalName"] = "s" * 5000
    doc["events"][2]["workflowExecutionSignaledEventAttributes"]["identity"] = "i" * 5000
    load_history(doc)


# --- payloads -------------------------------------------------------------------------------


def _payloads_of_size(size: int) -> dict[str, Any]:
    """A Payloads JSON value whose proto3 size (Payloads.Size()) is exactly `size`."""
    metadata = {"encoding": base64.b64encode(b"binary/plain").decode()}
    data_len = size - 40
    while True:
        value = {"payloads": [{"metadata": metadata, "data": ""}]}
        value["payloads"][0]["data"] = base64.b64encode(b"\x00" * data_len).decode()
        actual = _proto_size(value)
        if actual == size:
            return value
        data_len += size - actual


def _proto_size(value: dict[str, Any]) -> int:
    payloads = m.Payloads(
        payloads=tuple(
            m.Payload(
                metadata={k: base64.b64decode(v) for k, v in p["metadata"].items()},
                data=base64.b64decode(p["data"]),
            )
            for p in value["payloads"]
        )
    )
    return payloads_size(payloads)


def test_the_payload_size_is_the_proto3_size_the_server_measures() -> None:
    temporal = pytest.importorskip("temporalio.api.common.v1")
    for size in (0, 1, 127, 128, 300, 16_384, 2 * MiB):
        data = b"\x01" * size
        ours = m.Payloads(payloads=(m.Payload(metadata={"encoding": b"json/plain"}, data=data),))
        theirs = temporal.Payloads(
            payloads=[temporal.Payload(metadata={"encoding": b"json/plain"}, data=data)]
        )
        assert payloads_size(ours) == theirs.ByteSize()


def test_a_payloads_field_may_have_2_mib_not_one_byte_more() -> None:
    doc, attrs = _activity()
    attrs["input"] = _payloads_of_size(2 * MiB)
    load_history(orjson.dumps(doc))
    attrs["input"] = _payloads_of_size(2 * MiB + 1)
    error = _refused(orjson.dumps(doc))
    assert (error.event_id, error.field) == (5, "activityTaskScheduledEventAttributes.input")
    assert (error.limit, error.actual) == (2 * MiB, 2 * MiB + 1)
    assert error.limit_name == "limit.blobSize.error"


def test_the_limit_is_per_field_not_per_history() -> None:
    doc, attrs = _activity()
    attrs["input"] = _payloads_of_size(2 * MiB)
    result = doc["events"][6]["activityTaskCompletedEventAttributes"]
    result["result"] = _payloads_of_size(2 * MiB)
    load_history(orjson.dumps(doc))


def test_a_header_is_not_limited() -> None:
    doc, attrs = _activity()
    attrs["header"] = {"fields": {"big": _payloads_of_size(3 * MiB)["payloads"][0]}}
    load_history(orjson.dumps(doc))


# --- history length and size ----------------------------------------------------------------


def _long_history(signals: int, *, terminate_after: int | None = None) -> bytes:
    """STARTED and WFT_SCHEDULED of a real run, then `signals` signals, one per transaction
    (a task-id gap between them, Rule T), and optionally a terminating transaction."""
    real = _doc("signals_many_batched")["events"]
    signal = real[2]
    events = [real[0], real[1]]
    task_id = int(real[1]["taskId"])
    for i in range(signals):
        task_id += 2
        event = dict(signal)
        event["eventId"], event["taskId"] = str(len(events) + 1), str(task_id)
        events.append(event)
        if terminate_after is not None and i + 1 == terminate_after:
            break
    if terminate_after is not None:
        end = dict(_doc("workflow_terminated")["events"][-1])
        event_id = len(events) + 1
        end["eventId"], end["taskId"] = str(event_id), str(task_id + 2)
        events.append(end)
    return orjson.dumps({"events": events})


@pytest.fixture(scope="module")
def at_the_limit() -> bytes:
    return _long_history(51_200 - 2)


def test_a_history_of_51200_events_passes(at_the_limit: bytes) -> None:
    assert len(load_history(at_the_limit).history) == 51_200


def test_one_event_past_51200_then_another_transaction_fails() -> None:
    error = _refused(_long_history(51_200))  # 51,201 and 51,202: two transactions past
    assert error.limit_name == "limit.historyCount.error" and error.event_id == 51_202
    assert "passed at event 51201" in str(error)


def test_the_servers_termination_may_follow_the_transaction_that_crossed_the_limit() -> None:
    run = load_history(_long_history(51_199, terminate_after=51_199))
    assert len(run.history) == 51_202  # 51,201 events, then the terminating transaction


def test_the_limit_test_is_per_transaction() -> None:
    small = HistoryLimits(max_events=10)
    # signals_many_batched: the signals are in transactions of one; event 11 crosses a limit of
    # 10, event 12 is the one transaction that may follow, event 13 a second one
    error = _refused(_raw("signals_many_batched"), limits=small)
    assert error.event_id == 13 and "second transaction" in str(error)
    assert "passed at event 11" in str(error)
    # workflow_terminated, transactions [1 2] [3] [4 5] [6 TERMINATED]
    load_history(_raw("workflow_terminated"), limits=HistoryLimits(max_events=3))
    error = _refused(_raw("workflow_terminated"), limits=HistoryLimits(max_events=2))
    assert error.event_id == 6 and "second transaction" in str(error)
    # one_activity_eager, [1 2] [3] [4 5] [6 7 8] [9] [10 11 COMPLETED]: a completion may cross
    load_history(_raw("one_activity_eager"), limits=HistoryLimits(max_events=9))
    error = _refused(_raw("one_activity_eager"), limits=HistoryLimits(max_events=8))
    assert error.event_id == 10 and "does not terminate" in str(error)


def test_the_history_size_limit_counts_the_servers_bytes() -> None:
    from runhistory.projections.size import event_size, history_size_bytes, varint_len

    raw = _raw("workflow_terminated")  # transactions [1 2] [3] [4 5] [6 TERMINATED]
    run = load_history(raw)
    total = history_size_bytes(run, use_checkpoints=False)
    through_3 = 0
    for event in run.history[:3]:
        size = event_size(event)
        through_3 += size + 1 + varint_len(size)
    # exactly the size of events 1-3: event 4 crosses, [4 5] and the termination may follow
    load_history(raw, limits=HistoryLimits(max_history_bytes=through_3))
    # one byte less: event 3 crosses, and two transactions follow it
    error = _refused(raw, limits=HistoryLimits(max_history_bytes=through_3 - 1))
    assert error.limit_name == "limit.historySize.error" and error.actual == total
    assert error.event_id == 6 and "passed at event 3" in str(error)


def test_the_real_50k_history_loads_within_the_limits() -> None:
    bench = ROOT.parent / "shared" / "bench" / "long-history-50k.json.gz"
    if not bench.exists():
        pytest.skip(f"{bench} is not here")
    assert len(load_history(bench).history) == 50_132


# --- overrides ------------------------------------------------------------------------------


def test_overrides_raise_lower_or_switch_off_a_limit() -> None:
    doc, attrs = _activity()
    attrs["activityId"] = "a" * 1001
    _refused(copy.deepcopy(doc))
    load_history(copy.deepcopy(doc), limits=HistoryLimits(max_id_length=2000))
    load_history(copy.deepcopy(doc), limits=HistoryLimits(max_id_length=None))
    load_history(copy.deepcopy(doc), limits=NO_LIMITS)
    load_history(copy.deepcopy(doc), strict=False)  # lenient mode enforces none by default
    _refused(copy.deepcopy(doc), strict=False, limits=TEMPORAL_LIMITS)  # unless asked to
    _refused(_raw("one_activity_eager"), limits=HistoryLimits(max_id_length=5))


def test_collect_all_reports_a_limit_with_the_other_problems() -> None:
    doc, attrs = _activity()
    attrs["activityId"] = "a" * 1001
    attrs["activityType"]["name"] = "b" * 1001
    doc["events"][0]["workflowExecutionStartedEventAttributes"]["taskQueue"]["name"] = "q" * 2000
    with pytest.raises(InvalidHistory) as caught:
        load_history(doc, collect_all=True)
    assert all(isinstance(e, LimitExceeded) for e in caught.value.errors)
    assert [e.event_id for e in caught.value.errors][:2] == [1, 5]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("temporal", TEMPORAL_LIMITS),
        ("none", NO_LIMITS),
        ("max_events=100000", HistoryLimits(max_events=100_000)),
        (
            "max-id-length=none, max_payload_bytes=4_194_304",
            HistoryLimits(max_id_length=None, max_payload_bytes=4 * MiB),
        ),
    ],
)
def test_limits_parse_from_the_cli_spelling(spec: str, expected: HistoryLimits) -> None:
    assert HistoryLimits.parse(spec) == expected


@pytest.mark.parametrize("spec", ["max_events", "nonsense=1", "max_events=lots", "max_events=-1"])
def test_bad_limit_spellings_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        HistoryLimits.parse(spec)


def test_limit_exceeded_is_a_history_error() -> None:
    assert issubclass(LimitExceeded, HistoryError)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runhistory.adapters.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_validate_reports_a_limit_in_one_line_and_limits_none_accepts_it(tmp_path: Path) -> None:
    doc, attrs = _activity()
    attrs["activityId"] = "a" * 1001
    path = tmp_path / "long-id.json"
    path.write_text(json.dumps(doc))
    out = _cli("validate", str(path))
    assert out.returncode == 1
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and "event 5 ACTIVITY_TASK_SCHEDULED" in lines[0]
    assert "activityId is 1,001 bytes, over the limit of 1,000" in lines[0]
    assert _cli("validate", "--limits", "none", str(path)).returncode == 0
    assert _cli("validate", "--limits", "max_id_length=1001", str(path)).returncode == 0
    bad = _cli("validate", "--limits", "bogus=1", str(path))
    assert bad.returncode == 2 and "bogus" in bad.stderr


def test_import_takes_the_limits_flag(tmp_path: Path) -> None:
    doc, attrs = _activity()
    attrs["activityId"] = "a" * 1001
    path = tmp_path / "long-id.json"
    path.write_text(json.dumps(doc))
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    refused = _cli("import", str(path), "--store", store)
    assert refused.returncode == 1 and "event 5" in refused.stderr
    assert _cli("import", str(path), "--store", store, "--limits", "none").returncode == 0

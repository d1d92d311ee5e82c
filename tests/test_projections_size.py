"""`history_size_bytes` / `event_size`: the proto3 binary size, checked against the protobuf
runtime itself (temporalio's generated HistoryEvent) and against hand-computed encodings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from runhistory.adapters.history_json import load_history
from runhistory.domain import messages as m
from runhistory.domain.enums import EventType as E
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.timeval import Duration
from runhistory.projections import history_size_bytes
from runhistory.projections.size import event_size, varint_len
from tests.conformance_data import CONFORMANCE
from tests.factory import make_event

HISTORIES = sorted(CONFORMANCE.glob("*/history*.json"))


@pytest.mark.parametrize(
    ("value", "size"),
    [(0, 1), (1, 1), (127, 1), (128, 2), (16383, 2), (16384, 3), (2**31 - 1, 5), (2**63 - 1, 9)],
)
def test_varint_len(value: int, size: int) -> None:
    assert varint_len(value) == size


def test_negative_varints_take_ten_bytes() -> None:
    assert varint_len(-1) == 10
    assert varint_len(-(2**63)) == 10


def _replace(event: HistoryEvent, **attrs: Any) -> HistoryEvent:
    fields = dict(event.__dict__)
    fields["attributes"] = dataclasses.replace(event.attributes, **attrs)
    return type(event)(**fields)


def test_an_int32_field_costs_its_tag_and_varint() -> None:
    base = make_event(E.ACTIVITY_TASK_STARTED, 6, scheduled_event_id=5)
    one = _replace(base, attempt=1)
    big = _replace(base, attempt=300)
    negative = _replace(base, attempt=-1)
    assert event_size(one) - event_size(base) == 2  # tag 4<<3 (1 byte) + varint 1
    assert event_size(big) - event_size(base) == 3  # varint of 300 is 2 bytes
    assert event_size(negative) - event_size(base) == 11  # sign-extended to 10 bytes


def test_a_set_but_empty_message_costs_two_bytes_and_none_costs_nothing() -> None:
    base = make_event(E.ACTIVITY_TASK_SCHEDULED, 5, activity_id="1")
    empty = _replace(base, priority=m.Priority())
    assert event_size(empty) - event_size(base) == 2  # tag 14<<3|2, length 0


def test_a_string_costs_its_utf8_length() -> None:
    base = make_event(E.ACTIVITY_TASK_SCHEDULED, 5, activity_id="a")
    wide = _replace(base, activity_id="é")  # 2 bytes in UTF-8
    assert event_size(wide) - event_size(base) == 1


def test_a_duration_is_a_message_of_seconds_and_nanos() -> None:
    base = make_event(E.ACTIVITY_TASK_SCHEDULED, 5, activity_id="1")
    whole = _replace(base, heartbeat_timeout=Duration(10, 0))
    fraction = _replace(base, heartbeat_timeout=Duration(0, 500_000_000))
    zero = _replace(base, heartbeat_timeout=Duration(0, 0))
    assert event_size(whole) - event_size(base) == 4  # tag, len, seconds tag, varint 10
    assert event_size(fraction) - event_size(base) == 8  # tag, len, nanos tag, 5-byte varint
    assert event_size(zero) - event_size(base) == 2  # set, so present though empty


def test_map_entries_carry_key_and_value() -> None:
    base = make_event(E.WORKFLOW_PROPERTIES_MODIFIED, 5, workflow_task_completed_event_id=4)
    memo = m.Memo(fields={"k": m.Payload(metadata={"encoding": b"json/plain"}, data=b"1")})
    with_memo = _replace(base, upserted_memo=memo)
    payload = (1 + 1 + 8 + 1 + 1 + 10) + 2 + (1 + 1 + 1)  # metadata entry + its frame + data
    entry = (1 + 1 + 1) + (1 + 1 + payload)  # key "k" + value
    memo_size = 1 + 1 + entry
    assert event_size(with_memo) - event_size(base) == 1 + 1 + memo_size


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recorded_event_has_the_size_protobuf_gives_it(path: Path) -> None:
    history_pb = pytest.importorskip("temporalio.api.history.v1")
    json_format = pytest.importorskip("google.protobuf.json_format")
    doc = json.loads(path.read_text())
    run = load_history(doc)
    for raw, event in zip(doc["events"], run.history, strict=True):
        proto = history_pb.HistoryEvent()
        json_format.ParseDict(raw, proto)
        assert event_size(event, search_attributes="as-read") == proto.ByteSize(), raw["eventId"]


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_server_checkpoint_shortcut_changes_nothing(path: Path) -> None:
    run = load_history(path)
    assert history_size_bytes(run) == history_size_bytes(run, use_checkpoints=False)


def test_a_wrong_checkpoint_is_detected_and_everything_is_sized() -> None:
    doc = json.loads((CONFORMANCE / "timers" / "history.json").read_text())
    truth = history_size_bytes(load_history(doc), use_checkpoints=False)
    started = [e for e in doc["events"] if "workflowTaskStartedEventAttributes" in e]
    attrs = started[-1]["workflowTaskStartedEventAttributes"]
    attrs["historySizeBytes"] = str(int(attrs["historySizeBytes"]) + 7)
    tampered = load_history(doc)
    assert history_size_bytes(tampered) == history_size_bytes(tampered, use_checkpoints=False)
    # the tampered event itself grew by nothing (same varint length), so the total is the truth
    assert history_size_bytes(tampered) == truth


def test_custom_search_attributes_are_sized_as_a_sql_visibility_server_stores_them() -> None:
    run = load_history(CONFORMANCE / "upsert_search_attributes" / "history.json")
    as_read = history_size_bytes(run, search_attributes="as-read", use_checkpoints=False)
    stored = history_size_bytes(run, use_checkpoints=False)
    # OracleKeyword (13) -> Keyword01 (9) three times, OracleInt (9) -> Int01 (5) twice, and the
    # type the server adds to the null (removed) OracleKeyword on read: 4*5 + 19 bytes
    assert as_read - stored == 39


def test_the_transient_tail_costs_nothing() -> None:
    data = json.loads(
        (CONFORMANCE / "wft_failure_then_fixed" / "checkpoints" / "001.json").read_text()
    )
    run = load_history(data["history"])
    tail = [e for e in run.history if e.task_id == 0]
    assert tail, "the checkpoint has a transient tail"
    durable = run.history[: len(run.history) - len(tail)]
    expected = sum(1 + varint_len(event_size(e)) + event_size(e) for e in durable)
    assert history_size_bytes(run, use_checkpoints=False) == expected


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_built_in_json_encoder_writes_what_the_codec_writes(path: Path) -> None:
    from runhistory.adapters.codec import EventCodec  # the tests may use the adapters
    from runhistory.projections._protojson import encode_message

    codec = EventCodec()
    for event in load_history(path).history:
        assert encode_message(event.attributes) == codec.encode_message(event.attributes)

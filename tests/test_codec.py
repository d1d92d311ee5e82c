"""EventCodec: Temporal proto3 JSON <-> domain objects.

The ground truth is the recorded server output under /work/shared/conformance and the 50k-event
bench history: every event must encode back to exactly what was read. The other tests pin the
accepted input variants (PascalCase and bare enums, int64 numbers, snake_case names), unknown
keys at any depth, unknown event types, and the JSON path of every malformed value.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import cattrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runhistory.adapters.codec import EventCodec
from runhistory.domain import messages as m
from runhistory.domain.enums import PROTO_PREFIX, EventType, TaskQueueKind, TimeoutType
from runhistory.domain.errors import HistoryError, MalformedHistory, UnknownEventType
from runhistory.domain.event_base import HistoryEvent, HistoryStarted, UnknownEvent
from runhistory.domain.fieldspec import FieldSpec, Label
from runhistory.domain.schema import ATTRIBUTES, ENVELOPE, FIELDS
from runhistory.domain.timeval import Duration, Timestamp

SHARED = Path("/work/shared")
CONFORMANCE = SHARED / "conformance"
BENCH = SHARED / "bench" / "long-history-50k.json.gz"

pytestmark = pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="no conformance recordings")

JsonObj = dict[str, Any]


def _histories() -> list[tuple[str, list[JsonObj]]]:
    """Every recorded history: history*.json files and the `history` of each checkpoint."""
    found: list[tuple[str, list[JsonObj]]] = []
    if not CONFORMANCE.is_dir():
        return found
    found.extend(
        (str(path.relative_to(CONFORMANCE)), json.loads(path.read_text())["events"])
        for path in sorted(CONFORMANCE.rglob("history*.json"))
    )
    for path in sorted(CONFORMANCE.glob("*/checkpoints/*.json")):
        history = json.loads(path.read_text())["history"]
        found.append((str(path.relative_to(CONFORMANCE)), history["events"]))
    return found


HISTORIES = _histories()


def _history(name: str) -> list[JsonObj]:
    return next(copy.deepcopy(events) for key, events in HISTORIES if key == name)


def _one_activity() -> list[JsonObj]:
    """11 events: started, WFT x3, activity scheduled (index 4) / started / completed, ..."""
    return _history("one_activity_eager/history.json")


@pytest.fixture(scope="module")
def codec() -> EventCodec:
    return EventCodec()


@pytest.fixture(scope="module")
def lenient() -> EventCodec:
    return EventCodec(strict=False)


def _round_trip(codec: EventCodec, events: list[JsonObj]) -> list[JsonObj]:
    return [
        codec.encode(codec.decode(e, originator_id=uuid4(), index=i)) for i, e in enumerate(events)
    ]


def _decode_all(codec: EventCodec, events: list[JsonObj], oid: UUID) -> list[HistoryEvent]:
    return [codec.decode(e, originator_id=oid, index=i) for i, e in enumerate(events)]


# --- lossless round trip on real recordings ----------------------------------------------------


def test_recordings_were_found() -> None:
    assert len(HISTORIES) > 60
    assert any("checkpoints" in name for name, _ in HISTORIES)
    assert any(Path(name).name != "history.json" for name, _ in HISTORIES)


@pytest.mark.parametrize(("name", "events"), HISTORIES, ids=[name for name, _ in HISTORIES])
def test_conformance_history_round_trips_exactly(
    codec: EventCodec, name: str, events: list[JsonObj]
) -> None:
    out = _round_trip(codec, events)
    assert out == events
    # Byte for byte too: same key order (proto field numbers) and the same number spellings.
    assert orjson.dumps(out) == orjson.dumps(events)


def test_bench_history_round_trips_exactly(codec: EventCodec) -> None:
    if not BENCH.exists():
        pytest.skip("no bench history")
    events = orjson.loads(gzip.decompress(BENCH.read_bytes()))["events"]
    assert len(events) == 50_132
    assert _round_trip(codec, events) == events


def test_decoded_event_envelope(codec: EventCodec) -> None:
    events = _one_activity()
    oid = uuid4()
    decoded = _decode_all(codec, events, oid)
    first = decoded[0]
    assert isinstance(first, HistoryStarted)
    assert first.originator_topic == "runhistory:WorkflowRun"
    assert first.event_type is EventType.WORKFLOW_EXECUTION_STARTED
    scheduled = decoded[4]
    assert scheduled.event_type is EventType.ACTIVITY_TASK_SCHEDULED
    assert scheduled.originator_id == oid
    assert scheduled.originator_version == scheduled.event_id == 5
    assert scheduled.task_id == int(events[4]["taskId"])
    assert scheduled.event_time == Timestamp.parse(events[4]["eventTime"])
    assert scheduled.timestamp == scheduled.event_time.to_datetime()
    assert scheduled.unknown_fields is None
    attributes = scheduled.attributes
    assert isinstance(attributes, m.ActivityTaskScheduledEventAttributes)
    assert attributes.start_to_close_timeout == Duration(10)
    assert attributes.task_queue == m.TaskQueue(
        name="oracle-one_activity_eager", kind=TaskQueueKind.NORMAL
    )
    assert attributes.header == m.Header()
    assert attributes.input is not None
    assert attributes.input.payloads[0].data == b'"hello"'
    assert dict(attributes.input.payloads[0].metadata) == {"encoding": b"json/plain"}
    assert attributes.retry_policy is not None
    assert attributes.retry_policy.backoff_coefficient == 2.0
    assert attributes.workflow_task_completed_event_id == 4


def test_decoding_twice_gives_equal_events(codec: EventCodec) -> None:
    events = _one_activity()
    oid = uuid4()
    assert _decode_all(codec, events, oid) == _decode_all(codec, copy.deepcopy(events), oid)


# --- accepted input variants ---------------------------------------------------------------------

INT64_KINDS = {"int64", "uint64", "sint64", "fixed64", "sfixed64"}


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _transform(
    specs: tuple[FieldSpec, ...],
    obj: JsonObj,
    enum_fn: Callable[[type, str], Any],
    int_fn: Callable[[str], Any],
) -> JsonObj:
    """Rewrite every enum and int64 value of a JSON message, guided by the schema."""
    by_key = {_camel(spec.name): spec for spec in specs}
    out: JsonObj = {}
    for key, value in obj.items():
        spec = by_key.get(key)
        if spec is None:
            out[key] = value
            continue

        def one(v: Any, spec: FieldSpec = spec) -> Any:
            if spec.kind == "message":
                assert spec.target is not None
                return _transform(FIELDS[spec.target], v, enum_fn, int_fn)
            if spec.kind == "enum":
                assert spec.target is not None
                return enum_fn(spec.target, v)
            if spec.kind in INT64_KINDS:
                return int_fn(v)
            return v

        if spec.label is Label.REPEATED:
            out[key] = [one(v) for v in value]
        elif spec.label is Label.MAP:
            out[key] = {k: one(v) for k, v in value.items()}
        else:
            out[key] = one(value)
    return out


def _transform_event(
    event: JsonObj, enum_fn: Callable[[type, str], Any], int_fn: Callable[[str], Any]
) -> JsonObj:
    event_type = EventType[event["eventType"].removeprefix("EVENT_TYPE_")]
    name, number, cls = ATTRIBUTES[event_type]
    attributes = FieldSpec(name, number, "message", cls, Label.SINGLE, False)
    return _transform((*ENVELOPE, attributes), event, enum_fn, int_fn)


def _bare(cls: type, name: str) -> str:
    assert name.startswith(PROTO_PREFIX[cls]), (cls, name)
    return name.removeprefix(PROTO_PREFIX[cls])


def _pascal(cls: type, name: str) -> str:
    return "".join(part.capitalize() for part in _bare(cls, name).split("_"))


def _enum_number(cls: type, name: str) -> int:
    return int(cls[_bare(cls, name)])  # type: ignore[index]


def _all_events() -> list[JsonObj]:
    return [e for _, events in HISTORIES for e in events]


@pytest.mark.parametrize(
    "enum_fn", [_pascal, _bare, _enum_number], ids=["PascalCase", "bare", "number"]
)
def test_enum_spellings_decode_like_canonical(
    codec: EventCodec, enum_fn: Callable[[type, str], Any]
) -> None:
    events = _all_events()
    variant = [_transform_event(e, enum_fn, lambda v: v) for e in events]
    assert variant != events
    if enum_fn is _pascal:
        assert variant[0]["eventType"] == "WorkflowExecutionStarted"
    oid = uuid4()
    assert _decode_all(codec, variant, oid) == _decode_all(codec, events, oid)
    assert _round_trip(codec, variant) == events


def test_old_tctl_sample_with_pascal_enums(codec: EventCodec) -> None:
    event = {
        "eventId": "4",
        "eventTime": "2020-01-01T00:00:00Z",
        "eventType": "WorkflowTaskTimedOut",
        "taskId": "7",
        "workflowTaskTimedOutEventAttributes": {
            "scheduledEventId": "2",
            "startedEventId": "3",
            "timeoutType": "StartToClose",
        },
    }
    decoded = codec.decode(event, originator_id=uuid4())
    assert decoded.event_type is EventType.WORKFLOW_TASK_TIMED_OUT
    assert decoded.attributes.timeout_type is TimeoutType.START_TO_CLOSE
    out = codec.encode(decoded)
    assert out["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT"
    assert out["workflowTaskTimedOutEventAttributes"]["timeoutType"] == (
        "TIMEOUT_TYPE_START_TO_CLOSE"
    )


def test_int64_as_numbers_decodes_like_strings(codec: EventCodec) -> None:
    events = _all_events()
    variant = [_transform_event(e, lambda _c, v: v, int) for e in events]
    assert variant[0]["eventId"] == 1
    oid = uuid4()
    assert _decode_all(codec, variant, oid) == _decode_all(codec, events, oid)
    assert _round_trip(codec, variant) == events


def test_proto_field_names_are_accepted(codec: EventCodec) -> None:
    event = _one_activity()[4]
    snake = {
        "event_id": event["eventId"],
        "event_time": event["eventTime"],
        "event_type": event["eventType"],
        "task_id": event["taskId"],
        "activity_task_scheduled_event_attributes": {
            "activity_id": "1",
            "task_queue": {"name": "q", "normal_name": "n"},
        },
    }
    decoded = codec.decode(snake, originator_id=uuid4())
    assert decoded.event_id == 5
    assert decoded.task_id == int(event["taskId"])
    assert decoded.attributes.activity_id == "1"
    assert decoded.attributes.task_queue == m.TaskQueue(name="q", normal_name="n")
    assert decoded.unknown_fields is None
    with pytest.raises(MalformedHistory) as info:
        codec.decode_message(m.TaskQueue, {"normalName": "a", "normal_name": "b"})
    assert info.value.path == "$.normal_name"


def test_timestamps_in_other_spellings(codec: EventCodec) -> None:
    event = _one_activity()[1]
    oid = uuid4()
    cases = {
        "2026-11-22T01:49:26.433709232Z": Timestamp(1795312166, 433709232),
        "2026-11-22T01:49:26.433Z": Timestamp(1795312166, 433000000),
        "2026-11-22T01:49:26.4337Z": Timestamp(1795312166, 433700000),
        "2026-11-22T01:49:26Z": Timestamp(1795312166, 0),
        "2026-11-22T02:49:26.5+01:00": Timestamp(1795312166, 500000000),
        "2026-11-22t01:49:26.433709232z": Timestamp(1795312166, 433709232),
    }
    for text, expected in cases.items():
        decoded = codec.decode({**event, "eventTime": text}, originator_id=oid)
        assert decoded.event_time == expected, text
        assert decoded.timestamp == expected.to_datetime()
        assert codec.encode(decoded)["eventTime"] == str(expected)
    no_time = {k: v for k, v in event.items() if k != "eventTime"}
    decoded = codec.decode(no_time, originator_id=oid)
    assert decoded.event_time is None
    assert decoded.timestamp.isoformat() == "1970-01-01T00:00:00+00:00"
    assert codec.encode(decoded) == no_time


def test_missing_task_id_is_the_transient_tail(codec: EventCodec) -> None:
    event = _one_activity()[1]
    del event["taskId"]
    decoded = codec.decode(event, originator_id=uuid4())
    assert decoded.task_id == 0
    assert not decoded.durable
    assert codec.encode(decoded) == event


# --- scalars, defaults and presence -------------------------------------------------------------


def test_bytes_accept_url_safe_and_unpadded_base64(codec: EventCodec) -> None:
    for text in ("+/8=", "-_8=", "-_8", "+/8"):
        payload = codec.decode_message(m.Payload, {"data": text})
        assert payload.data == b"\xfb\xff"
        assert codec.encode_message(payload) == {"data": "+/8="}
    for bad in ("a", "a===", "ab$c", "YQ==YQ=="):
        with pytest.raises(MalformedHistory) as info:
            codec.decode_message(m.Payload, {"data": bad})
        assert info.value.path == "$.data"


def test_doubles_are_written_as_floats(codec: EventCodec) -> None:
    for given_value, written in ((2, 2.0), (2.0, 2.0), (1.5, 1.5), ("1.5", 1.5)):
        policy = codec.decode_message(m.RetryPolicy, {"backoffCoefficient": given_value})
        out = codec.encode_message(policy)["backoffCoefficient"]
        assert out == written
        assert type(out) is float
    for text in ("NaN", "Infinity", "-Infinity"):
        policy = codec.decode_message(m.RetryPolicy, {"backoffCoefficient": text})
        value = policy.backoff_coefficient
        assert math.isnan(value) if text == "NaN" else math.isinf(value)
        assert codec.encode_message(policy) == {"backoffCoefficient": text}


def test_defaults_are_omitted_and_present_empty_messages_kept(codec: EventCodec) -> None:
    empty = m.ActivityTaskScheduledEventAttributes(
        activity_id="",
        header=m.Header(),
        priority=m.Priority(),
        retry_policy=m.RetryPolicy(maximum_attempts=0, non_retryable_error_types=()),
        task_queue=m.TaskQueue(kind=TaskQueueKind.UNSPECIFIED),
    )
    assert codec.encode_message(empty) == {
        "taskQueue": {},
        "header": {},
        "retryPolicy": {},
        "priority": {},
    }
    assert codec.decode_message(m.ActivityTaskScheduledEventAttributes, {"header": {}}) == (
        m.ActivityTaskScheduledEventAttributes(header=m.Header())
    )


def test_presence_scalars_keep_set_defaults(codec: EventCodec) -> None:
    unset = codec.decode_message(m.VersioningOverride, {})
    assert unset.auto_upgrade is None
    assert codec.encode_message(unset) == {}
    set_false = codec.decode_message(m.VersioningOverride, {"autoUpgrade": False})
    assert set_false.auto_upgrade is False
    assert codec.encode_message(set_false) == {"autoUpgrade": False}


def test_enum_and_int_spellings_in_messages(codec: EventCodec) -> None:
    for kind in ("TASK_QUEUE_KIND_STICKY", "STICKY", "Sticky", 2, "2"):
        queue = codec.decode_message(m.TaskQueue, {"name": "q", "kind": kind})
        assert queue.kind is TaskQueueKind.STICKY
        assert codec.encode_message(queue) == {"name": "q", "kind": "TASK_QUEUE_KIND_STICKY"}
    for attempt in (3, "3", 3.0):
        task = codec.decode_message(m.WorkflowTaskScheduledEventAttributes, {"attempt": attempt})
        assert task.attempt == 3
    metadata = codec.decode_message(m.WorkflowTaskCompletedMetadata, {"coreUsedFlags": [1, "4", 2]})
    assert metadata.core_used_flags == (1, 4, 2)
    assert codec.encode_message(metadata) == {"coreUsedFlags": [1, 4, 2]}


def test_messages_round_trip_through_the_registry(codec: EventCodec) -> None:
    attributes = _one_activity()[4]["activityTaskScheduledEventAttributes"]
    decoded = codec.decode_message(m.ActivityTaskScheduledEventAttributes, attributes)
    assert codec.encode_message(decoded) == attributes
    assert codec.decode_message(Timestamp, "2026-11-22T01:49:26Z") == Timestamp(1795312166)
    assert codec.decode_message(Duration, "-1.5s") == Duration(-1, -500000000)
    assert codec.decode_message(TimeoutType, "Heartbeat") is TimeoutType.HEARTBEAT
    with pytest.raises(TypeError):
        codec.decode_message(UUID, "x")
    with pytest.raises(TypeError):
        codec.encode_message(object())


def test_the_global_cattrs_converter_is_untouched(codec: EventCodec) -> None:
    queue = m.TaskQueue(name="q", kind=TaskQueueKind.NORMAL)
    assert codec.encode_message(queue) == {"name": "q", "kind": "TASK_QUEUE_KIND_NORMAL"}
    plain = cattrs.unstructure(queue)
    assert plain != codec.encode_message(queue)
    assert "normal_name" in plain


# --- unknown keys ------------------------------------------------------------------------------


def test_unknown_keys_survive_at_every_depth(codec: EventCodec) -> None:
    event = _one_activity()[4]
    attributes = event["activityTaskScheduledEventAttributes"]
    event["futureEnvelopeField"] = {"nested": [1, {"x": None}]}
    attributes["futureAttribute"] = "a"
    attributes["taskQueue"]["futureQueueField"] = 7
    attributes["retryPolicy"]["futureRetryField"] = [True]
    attributes["header"]["futureHeaderField"] = {}
    attributes["input"]["payloads"][0]["futurePayloadField"] = "p"
    decoded = codec.decode(event, originator_id=uuid4(), index=4)
    assert decoded.unknown_fields == {"futureEnvelopeField": {"nested": [1, {"x": None}]}}
    assert decoded.attributes.unknown_fields == {"futureAttribute": "a"}
    assert decoded.attributes.task_queue.unknown_fields == {"futureQueueField": 7}
    assert decoded.attributes.retry_policy.unknown_fields == {"futureRetryField": [True]}
    assert decoded.attributes.header.unknown_fields == {"futureHeaderField": {}}
    assert decoded.attributes.input.payloads[0].unknown_fields == {"futurePayloadField": "p"}
    out = codec.encode(decoded)
    assert out == event
    # Known keys first, in proto order, then the unknown ones.
    assert list(out)[-1] == "futureEnvelopeField"
    assert list(out["activityTaskScheduledEventAttributes"])[-1] == "futureAttribute"
    # The same leaf message without the unknown key is not confused with it (leaf cache).
    plain = _one_activity()[4]
    again = codec.decode(plain, originator_id=uuid4())
    assert again.attributes.task_queue.unknown_fields is None
    assert codec.encode(again) == plain


def test_kept_unknown_values_do_not_alias_the_input(codec: EventCodec) -> None:
    event = _one_activity()[4]
    event["future"] = {"list": [1]}
    decoded = codec.decode(event, originator_id=uuid4())
    event["future"]["list"].append(2)
    assert decoded.unknown_fields == {"future": {"list": [1]}}
    out = codec.encode(decoded)
    out["future"]["list"].append(3)
    assert decoded.unknown_fields == {"future": {"list": [1]}}


# --- unknown event types -----------------------------------------------------------------------


def _future_event(**extra: Any) -> JsonObj:
    return {
        "eventId": "12",
        "eventTime": "2026-11-22T01:49:26.500Z",
        "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_TELEPORTED",
        "taskId": "1048700",
        "workflowExecutionTeleportedEventAttributes": {"destination": {"planet": "Mars"}},
        **extra,
    }


def test_strict_refuses_unknown_event_types(codec: EventCodec) -> None:
    with pytest.raises(UnknownEventType) as info:
        codec.decode(_future_event(), originator_id=uuid4(), index=11)
    assert info.value.event_id == 12
    assert info.value.event_type == "EVENT_TYPE_WORKFLOW_EXECUTION_TELEPORTED"
    with pytest.raises(UnknownEventType):
        codec.decode(_future_event(workerMayIgnore=False), originator_id=uuid4())
    unspecified = {**_one_activity()[1], "eventType": "EVENT_TYPE_UNSPECIFIED"}
    with pytest.raises(UnknownEventType):
        codec.decode(unspecified, originator_id=uuid4())


def test_strict_keeps_unknown_types_the_worker_may_ignore(codec: EventCodec) -> None:
    event = _future_event(workerMayIgnore=True, futureKey=1)
    decoded = codec.decode(event, originator_id=uuid4(), index=11)
    assert isinstance(decoded, UnknownEvent)
    assert decoded.worker_may_ignore is True
    assert decoded.type_name == "EVENT_TYPE_WORKFLOW_EXECUTION_TELEPORTED"
    assert decoded.attributes_key == "workflowExecutionTeleportedEventAttributes"
    assert decoded.attributes == {"destination": {"planet": "Mars"}}
    assert decoded.unknown_fields == {"futureKey": 1}
    assert decoded.event_id == 12
    assert decoded.task_id == 1048700
    assert decoded.event_time == Timestamp.parse("2026-11-22T01:49:26.500Z")
    assert codec.encode(decoded) == event


@pytest.mark.parametrize(
    "event",
    [
        _future_event(),
        {**_future_event(), "eventType": 999},
        {**_future_event(), "eventType": "EVENT_TYPE_UNSPECIFIED"},
        {k: v for k, v in _future_event().items() if k != "eventType"},
        {k: v for k, v in _future_event().items() if not k.endswith("Attributes")},
        _future_event(otherEventAttributes={}),
    ],
    ids=["plain", "number", "unspecified", "no-type", "no-attrs", "two-attrs"],
)
def test_lenient_keeps_unknown_event_types(lenient: EventCodec, event: JsonObj) -> None:
    decoded = lenient.decode(event, originator_id=uuid4())
    assert isinstance(decoded, UnknownEvent)
    keys = [k for k in event if k.endswith("EventAttributes")]
    assert decoded.attributes_key == (keys[0] if len(keys) == 1 else None)
    assert lenient.encode(decoded) == event


def test_known_types_decode_the_same_in_lenient_mode(lenient: EventCodec) -> None:
    events = _one_activity()
    assert not any(isinstance(e, UnknownEvent) for e in _decode_all(lenient, events, uuid4()))
    assert _round_trip(lenient, events) == events


# --- malformed input ---------------------------------------------------------------------------

_ATTRS = "$.events[4].activityTaskScheduledEventAttributes"


def _set(path: tuple[Any, ...], value: Any) -> Callable[[JsonObj], None]:
    def mutate(event: JsonObj) -> None:
        target: Any = event
        for step in path[:-1]:
            target = target[step]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return mutate


_DELETE = object()
_A = "activityTaskScheduledEventAttributes"

MALFORMED: list[tuple[str, Callable[[JsonObj], None], str]] = [
    ("duration-number", _set((_A, "startToCloseTimeout"), 5), f"{_ATTRS}.startToCloseTimeout"),
    ("duration-text", _set((_A, "startToCloseTimeout"), "5 s"), f"{_ATTRS}.startToCloseTimeout"),
    ("object-as-string", _set((_A, "taskQueue"), "q"), f"{_ATTRS}.taskQueue"),
    ("list-as-scalar", _set((_A, "activityId"), ["1"]), f"{_ATTRS}.activityId"),
    (
        "bool-as-int64",
        _set((_A, "workflowTaskCompletedEventId"), True),
        f"{_ATTRS}.workflowTaskCompletedEventId",
    ),
    (
        "int64-overflow",
        _set((_A, "workflowTaskCompletedEventId"), str(2**63)),
        f"{_ATTRS}.workflowTaskCompletedEventId",
    ),
    (
        "int64-fraction",
        _set((_A, "workflowTaskCompletedEventId"), 1.5),
        f"{_ATTRS}.workflowTaskCompletedEventId",
    ),
    ("int-as-bool", _set((_A, "useWorkflowBuildId"), 1), f"{_ATTRS}.useWorkflowBuildId"),
    (
        "bad-enum",
        _set((_A, "taskQueue", "kind"), "TASK_QUEUE_KIND_FANCY"),
        f"{_ATTRS}.taskQueue.kind",
    ),
    ("bad-enum-number", _set((_A, "taskQueue", "kind"), 99), f"{_ATTRS}.taskQueue.kind"),
    (
        "bad-base64",
        _set((_A, "input", "payloads", 0, "data"), "!!"),
        f"{_ATTRS}.input.payloads[0].data",
    ),
    (
        "bad-map-value",
        _set((_A, "input", "payloads", 0, "metadata", "encoding"), 3),
        f"{_ATTRS}.input.payloads[0].metadata.encoding",
    ),
    (
        "odd-map-key",
        _set((_A, "input", "payloads", 0, "metadata"), {"a b": []}),
        f'{_ATTRS}.input.payloads[0].metadata["a b"]',
    ),
    ("list-as-object", _set((_A, "input", "payloads"), {}), f"{_ATTRS}.input.payloads"),
    ("null-in-list", _set((_A, "input", "payloads"), [{}, None]), f"{_ATTRS}.input.payloads[1]"),
    (
        "double-as-string",
        _set((_A, "retryPolicy", "backoffCoefficient"), "two"),
        f"{_ATTRS}.retryPolicy.backoffCoefficient",
    ),
    (
        "bool-as-double",
        _set((_A, "retryPolicy", "backoffCoefficient"), True),
        f"{_ATTRS}.retryPolicy.backoffCoefficient",
    ),
    (
        "int32-overflow",
        _set((_A, "retryPolicy", "maximumAttempts"), 2**31),
        f"{_ATTRS}.retryPolicy.maximumAttempts",
    ),
    ("bad-timestamp", _set(("eventTime",), "2026-02-30T00:00:00Z"), "$.events[4].eventTime"),
    ("timestamp-number", _set(("eventTime",), 1795312166), "$.events[4].eventTime"),
    ("missing-event-id", _set(("eventId",), _DELETE), "$.events[4].eventId"),
    ("bad-event-id", _set(("eventId",), "five"), "$.events[4].eventId"),
    ("bad-task-id", _set(("taskId",), {}), "$.events[4].taskId"),
    ("bad-event-type", _set(("eventType",), ["EVENT_TYPE_TIMER_FIRED"]), "$.events[4].eventType"),
    ("missing-attributes", _set((_A,), _DELETE), _ATTRS),
    ("attributes-as-list", _set((_A,), []), _ATTRS),
    ("bad-worker-may-ignore", _set(("workerMayIgnore",), "yes"), "$.events[4].workerMayIgnore"),
    ("bad-links", _set(("links",), [{"workflowEvent": 3}]), "$.events[4].links[0].workflowEvent"),
]


@pytest.mark.parametrize(
    ("mutate", "path"),
    [(mutate, path) for _, mutate, path in MALFORMED],
    ids=[name for name, _, _ in MALFORMED],
)
def test_malformed_values_are_reported_with_their_path(
    codec: EventCodec, mutate: Callable[[JsonObj], None], path: str
) -> None:
    event = _one_activity()[4]
    mutate(event)
    with pytest.raises(MalformedHistory) as info:
        codec.decode(event, originator_id=uuid4(), index=4)
    assert info.value.path == path
    assert info.value.event_id == (None if path.endswith(".eventId") else 5)
    assert path in str(info.value)


def test_an_event_that_is_not_an_object(codec: EventCodec) -> None:
    bad: Any
    for bad in ([], "event", 5, None):
        with pytest.raises(MalformedHistory) as info:
            codec.decode(bad, originator_id=uuid4(), index=9)
        assert info.value.path == "$.events[9]"
    with pytest.raises(MalformedHistory) as info:
        codec.decode({"eventId": "1", "eventType": 1}, originator_id=uuid4())
    assert info.value.path == "$.workflowExecutionStartedEventAttributes"


def test_decode_message_paths(codec: EventCodec) -> None:
    with pytest.raises(MalformedHistory) as info:
        codec.decode_message(m.Failure, {"cause": {"cause": {"message": 1}}}, "$.failure")
    assert info.value.path == "$.failure.cause.cause.message"
    with pytest.raises(MalformedHistory) as info:
        codec.decode_message(m.Payloads, [])
    assert info.value.path == "$"


# --- robustness: random JSON in random places --------------------------------------------------

# Object keys are often real field names (JSON and proto spellings), so that substituted
# objects reach the known-field code paths, not only the unknown-key one.
_FIELD_NAMES = sorted(
    {name for specs in FIELDS.values() for spec in specs for name in (spec.name, _camel(spec.name))}
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        ["0s", "1.5s", "YQ==", "2026-01-01T00:00:00Z", "-7", "12", "NaN", "TASK_QUEUE_KIND_NORMAL"]
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(_FIELD_NAMES), inner, max_size=4)
    ),
    max_leaves=10,
)
_SAMPLE = [
    e
    for name in (
        "one_activity_eager/history.json",
        "child_failed/history.json",
        "nexus_failed/history.json",
        "update_accepted_completed/history.json",
        "workflow_retry_policy/history.json",
        "activity_timeout_heartbeat/history.json",
    )
    if any(key == name for key, _ in HISTORIES)
    for e in _history(name)
]


def _places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _places(item, (*path, index))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_substitutions_fail_only_with_history_errors(data: st.DataObject) -> None:
    codec = EventCodec(strict=data.draw(st.booleans()))
    event: Any = copy.deepcopy(data.draw(st.sampled_from(_SAMPLE)))
    place = data.draw(st.sampled_from(list(_places(event))))
    value = data.draw(_JSON)
    if place:
        _set(place, value)(event)
    else:
        event = value
    oid = uuid4()
    try:
        decoded = codec.decode(event, originator_id=oid, index=3)
    except HistoryError as e:
        if isinstance(e, MalformedHistory):
            assert e.path.startswith("$.events[3]")
        return
    # Whatever was accepted is canonical after one trip: decode(encode(x)) == x.
    again = codec.decode(codec.encode(decoded), originator_id=oid, index=3)
    assert again == decoded

"""Properties over random legal histories (tests/historygen.py) and random corruptions of them.

- every generated history loads in strict mode and `dump_history(load_history(h)) == h`;
- the old PascalCase enum spelling and int64 values as JSON numbers load to the same dump (§6);
- whatever is done to a history (drop, duplicate, swap, re-point, re-type, delete, inject,
  truncate), loading raises a HistoryError subclass or succeeds, never anything else, in strict,
  lenient and collect-all mode; collect-all's errors are ordered by event id and name the
  strict-mode error;
- the transitions the generator exercises cover the transition tables.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runhistory import (
    EventOutOfSequence,
    HistoryError,
    InvalidHistory,
    WorkflowRun,
    dump_history,
    load_history,
)
from runhistory.adapters.codec import EventCodec
from runhistory.domain.decide import find_transition
from runhistory.domain.enums import PROTO_PREFIX, EventType
from runhistory.domain.event_base import HistoryStarted
from runhistory.domain.fieldspec import FieldSpec, Label
from runhistory.domain.routing import ROUTES
from runhistory.domain.schema import ATTRIBUTES, ENVELOPE, FIELDS
from runhistory.domain.transitions import ABSENT, NEVER_WRITTEN, TABLES, Entity
from tests.historygen import hsettings, legal_histories, random_history

Json = dict[str, Any]

CLOSE_STATUS = {
    "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED": "COMPLETED",
    "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED": "FAILED",
    "EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT": "TIMED_OUT",
    "EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED": "CANCELED",
    "EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED": "TERMINATED",
    "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW": "CONTINUED_AS_NEW",
}


def expected_status(history: Json) -> str:
    """The run status the events imply (§2.3 status derivation), computed from the JSON."""
    status = "RUNNING"
    for event in history["events"]:
        etype = event["eventType"]
        if etype in CLOSE_STATUS:
            return CLOSE_STATUS[etype]
        if etype == "EVENT_TYPE_WORKFLOW_EXECUTION_PAUSED":
            status = "PAUSED"
        elif etype == "EVENT_TYPE_WORKFLOW_EXECUTION_UNPAUSED":
            status = "RUNNING"
    return status


# --- the generated histories are legal -----------------------------------------------------


@hsettings(60)
@given(legal_histories())
def test_generated_history_loads_strictly_and_round_trips(history: Json) -> None:
    original = copy.deepcopy(history)
    run = load_history(history)
    assert history == original, "load_history must not modify its input"
    assert dump_history(run) == history
    assert [e.originator_version for e in run.history] == list(range(1, len(history["events"]) + 1))
    assert run.status == expected_status(history)
    assert run.is_closed == (history["events"][-1]["eventType"] in CLOSE_STATUS)


@hsettings(15)
@given(legal_histories())
def test_generated_history_loads_from_json_text_and_in_every_mode(history: Json) -> None:
    text = json.dumps(history)
    assert dump_history(load_history(text)) == history
    assert dump_history(load_history(text.encode(), strict=False)) == history
    assert dump_history(load_history(text, collect_all=True)) == history


def _type(event: Json) -> str:
    name: str = event["eventType"]
    return name.removeprefix("EVENT_TYPE_")


def _attrs(event: Json) -> Json:
    value: Json = next(v for k, v in event.items() if k.endswith("EventAttributes"))
    return value


def _transactions(events: list[Json]) -> list[list[Json]]:
    """Durable events grouped by consecutive task ids (Rule T, §3.3)."""
    groups: list[list[Json]] = []
    for event in events:
        if groups and int(event["taskId"]) == int(groups[-1][-1]["taskId"]) + 1:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups


IGNORABLE = {
    "WORKFLOW_EXECUTION_OPTIONS_UPDATED",
    "WORKFLOW_EXECUTION_PAUSED",
    "WORKFLOW_EXECUTION_UNPAUSED",
    "WORKFLOW_EXECUTION_TIME_SKIPPING_TRANSITIONED",
    "NEXUS_OPERATION_CANCEL_REQUEST_COMPLETED",
    "NEXUS_OPERATION_CANCEL_REQUEST_FAILED",
}


@hsettings(60)
@given(legal_histories())
def test_generated_history_has_the_server_shapes_the_validator_does_not_check(
    history: Json,
) -> None:
    """The generator itself follows the parts of the spec that live in task ids and flags."""
    events = history["events"]
    durable = [e for e in events if "taskId" in e]
    tail = events[len(durable) :]
    # I13: events without a task id are only a trailing transient [SCHEDULED(N>1), STARTED?]
    assert all("taskId" not in e for e in tail)
    assert [_type(e) for e in tail] in (
        [],
        ["WORKFLOW_TASK_SCHEDULED"],
        ["WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"],
    )
    if tail:
        assert _attrs(tail[0])["attempt"] > 1
    task_ids = [int(e["taskId"]) for e in durable]
    assert task_ids == sorted(set(task_ids)), "task ids only grow"
    for txn in _transactions(durable):
        ids = {int(e["eventId"]): e for e in txn}
        for event in txn:
            kind, a = _type(event), _attrs(event)
            if kind == "ACTIVITY_TASK_STARTED":  # I11: written with, and before, its result
                assert any(
                    _type(e).startswith("ACTIVITY_TASK_")
                    and _attrs(e).get("startedEventId") == event["eventId"]
                    for e in txn
                )
            if kind == "WORKFLOW_TASK_SCHEDULED" and a["attempt"] > 1:  # I10
                after = [ids.get(int(event["eventId"]) + k) for k in (1, 2)]
                assert [_type(e) if e else None for e in after] == [
                    "WORKFLOW_TASK_STARTED",
                    "WORKFLOW_TASK_COMPLETED",
                ]
            if kind == "ACTIVITY_TASK_CANCELED" and "startedEventId" not in a:  # I7 step 4
                assert int(a["latestCancelRequestedEventId"]) in ids
    for event in events:
        assert event.get("workerMayIgnore", False) == (_type(event) in IGNORABLE)
    # §2.3 Run: nothing of a workflow task and no command event while paused
    paused = False
    for event in events:
        kind = _type(event)
        if kind == "WORKFLOW_EXECUTION_PAUSED":
            paused = True
        elif kind == "WORKFLOW_EXECUTION_UNPAUSED":
            paused = False
        elif paused:
            assert not kind.startswith("WORKFLOW_TASK_") and "workflowTaskCompletedEventId" not in (
                _attrs(event)
            ), kind
    closes = [i for i, e in enumerate(events) if e["eventType"] in CLOSE_STATUS]
    assert closes in ([], [len(events) - 1]), "I2/I3: at most one close event, the last"


def test_seeded_histories_are_legal_too() -> None:
    """`random_history` (the same simulator, driven by random.Random) is legal as well."""
    codec = EventCodec()
    for seed in range(40):
        history = random_history(seed)
        assert dump_history(load_history(history, codec=codec), codec=codec) == history


# --- other JSON spellings (§6.2, §6.4) --------------------------------------------------------

_INT64 = frozenset({"int64", "uint64", "sint64", "fixed64", "sfixed64"})


def json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


_ATTRIBUTE_CLASSES = {json_name(name): cls for name, _number, cls in ATTRIBUTES.values()}


def _pascal(spec: FieldSpec, value: Any) -> Any:
    """Enum names in the tctl / old Web UI spelling: TASK_QUEUE_KIND_NORMAL -> Normal."""
    assert spec.target is not None
    prefix = PROTO_PREFIX[spec.target]
    if not (isinstance(value, str) and value.startswith(prefix)):
        return value
    return "".join(w.capitalize() for w in value[len(prefix) :].split("_"))


def _convert_value(spec: FieldSpec, value: Any, pascal: bool, numbers: bool) -> Any:
    if spec.kind in _INT64 and numbers and isinstance(value, str):
        return int(value)
    if spec.kind == "enum" and pascal:
        return _pascal(spec, value)
    if spec.kind == "message" and spec.target in FIELDS and isinstance(value, dict):
        return _convert_message(spec.target, value, pascal, numbers)
    return value


def _convert_field(spec: FieldSpec, value: Any, pascal: bool, numbers: bool) -> Any:
    if spec.label is Label.REPEATED:
        return [_convert_value(spec, v, pascal, numbers) for v in value]
    if spec.label is Label.MAP:
        return {k: _convert_value(spec, v, pascal, numbers) for k, v in value.items()}
    return _convert_value(spec, value, pascal, numbers)


def _convert_message(cls: type, msg: Json, pascal: bool, numbers: bool) -> Json:
    specs = {json_name(f.name): f for f in FIELDS[cls]}
    return {
        key: _convert_field(specs[key], value, pascal, numbers) if key in specs else value
        for key, value in msg.items()
    }


def respell(history: Json, *, pascal: bool = False, numbers: bool = False) -> Json:
    """The same history with PascalCase enum names and/or int64 values as JSON numbers, found
    field by field from the proto schema (so string fields such as `activityId: "1"` stay)."""
    out = []
    for event in history["events"]:
        converted: Json = {}
        for key, value in event.items():
            spec = next((f for f in ENVELOPE if json_name(f.name) == key), None)
            if spec is not None:
                converted[key] = _convert_field(spec, value, pascal, numbers)
            elif key in _ATTRIBUTE_CLASSES:
                converted[key] = _convert_message(_ATTRIBUTE_CLASSES[key], value, pascal, numbers)
            else:
                converted[key] = value
        out.append(converted)
    return {"events": out}


def test_respell_changes_what_it_should() -> None:
    """The converters themselves: a sanity check on a known history."""
    history = next(
        h
        for h in map(random_history, range(100))
        if any("activityTaskScheduledEventAttributes" in e for e in h["events"])
    )
    pascal = respell(history, pascal=True)
    numbers = respell(history, numbers=True)
    first = pascal["events"][0]
    assert first["eventType"] == "WorkflowExecutionStarted"
    assert first["workflowExecutionStartedEventAttributes"]["taskQueue"]["kind"] == "Normal"
    assert numbers["events"][0]["eventId"] == 1
    assert isinstance(numbers["events"][0]["taskId"], int)
    scheduled = [
        e["activityTaskScheduledEventAttributes"]
        for e in numbers["events"]
        if "activityTaskScheduledEventAttributes" in e
    ]
    assert isinstance(scheduled[0]["activityId"], str)  # a string field, not an int64
    assert isinstance(scheduled[0]["workflowTaskCompletedEventId"], int)
    assert numbers != history and pascal != history


@hsettings(40)
@given(legal_histories())
def test_pascal_case_and_numeric_int64_load_to_the_same_dump(history: Json) -> None:
    for variant in (
        respell(history, pascal=True),
        respell(history, numbers=True),
        respell(history, pascal=True, numbers=True),
    ):
        assert dump_history(load_history(variant)) == history


# --- corruptions never escape as anything but HistoryError -----------------------------------

CODEC = EventCodec()
LENIENT = EventCodec(strict=False)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "1",
            "9223372036854775808",
            "EVENT_TYPE_TIMER_FIRED",
            "WorkflowTaskScheduled",
            "2026-13-45T99:99:99Z",
            "1.5s",
            "s",
            "NaN",
            "anNvbi9wbGFpbg==",
            "not base64!",
        ]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)

_REF_SUFFIX = "EventId"


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON tree."""
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = root
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return root


def _delete(root: Any, path: tuple[Any, ...]) -> None:
    node = root
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]


@st.composite
def corrupted(draw: st.DrawFn) -> Json:
    """A legal history with one to three random corruptions."""
    history: Json = copy.deepcopy(draw(legal_histories(max_steps=20)))
    events: list[Any] = history["events"]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(
                ["drop", "duplicate", "swap", "reference", "type", "delete", "inject", "truncate"]
            )
        )
        n = len(events)
        if n == 0:
            break
        i = draw(st.integers(0, n - 1))
        if kind == "drop":
            del events[i]
        elif kind == "duplicate":
            events.insert(i, copy.deepcopy(events[i]))
        elif kind == "swap" and n > 1:
            i = min(i, n - 2)
            events[i], events[i + 1] = events[i + 1], events[i]
        elif kind == "reference":
            refs = [
                p
                for p in _paths(events)
                if p and isinstance(p[-1], str) and p[-1].endswith(_REF_SUFFIX)
            ]
            if refs:
                target = draw(st.sampled_from(refs))
                _set(events, target, str(draw(st.integers(-2, n + 3))))
        elif kind == "type":
            new_type = draw(
                st.one_of(
                    st.sampled_from([f"EVENT_TYPE_{t.name}" for t in EventType]),
                    st.sampled_from([t.name.title().replace("_", "") for t in EventType]),
                    st.text(max_size=10),
                    st.integers(-1, 80),
                )
            )
            if isinstance(events[i], dict):
                events[i]["eventType"] = new_type
        elif kind == "delete":
            paths = [p for p in _paths(events[i]) if p]
            if paths:
                _delete(events[i], draw(st.sampled_from(paths)))
        elif kind == "inject":
            path = draw(st.sampled_from(_paths(events)))
            value = draw(json_values)
            if path:
                _set(events, path, value)
            else:
                history["events"] = events = [value]
        else:  # truncate
            del events[draw(st.integers(0, n)) :]
    return history


def _attempt(load: Callable[[], WorkflowRun]) -> HistoryError | None:
    """Run a load; return its HistoryError, None on success; anything else fails the test."""
    try:
        load()
    except HistoryError as e:
        return e
    return None


def _error_ids(error: HistoryError) -> list[int | None]:
    assert isinstance(error, InvalidHistory)
    return [e.event_id for e in error.errors]


@hsettings(200)
@given(corrupted())
def test_corruptions_raise_only_history_errors(history: Json) -> None:
    strict = _attempt(lambda: load_history(history, codec=CODEC))
    lenient = _attempt(lambda: load_history(history, codec=LENIENT))
    collected = _attempt(lambda: load_history(history, codec=CODEC, collect_all=True))
    lenient_collected = _attempt(
        lambda: load_history(history, codec=LENIENT, collect_all=True, strict=False)
    )
    # the modes agree on whether the history is acceptable
    assert (strict is None) == (collected is None)
    assert (lenient is None) == (lenient_collected is None)
    if lenient is not None:
        assert strict is not None, "lenient mode accepts everything strict mode accepts"
    if isinstance(collected, InvalidHistory):
        ids = _error_ids(collected)
        assert ids, "InvalidHistory names at least one error"
        known = [i for i in ids if i is not None]
        assert known == sorted(known), "collect-all errors are ordered by event id"
        assert ids[: len(known)] == known, "errors without an event id come last"
        assert collected.event_id == ids[0]


def _ids_in_order(history: Json) -> bool:
    """Every event has a readable eventId and they increase along the list."""
    ids: list[int] = []
    for event in history["events"]:
        raw = event.get("eventId") if isinstance(event, dict) else None
        if not (isinstance(raw, str) and raw.isdigit()):
            return False
        ids.append(int(raw))
    return ids == sorted(ids) and len(set(ids)) == len(ids)


@hsettings(150)
@given(corrupted())
def test_collect_all_first_error_is_the_strict_error(history: Json) -> None:
    strict = _attempt(lambda: load_history(history, codec=CODEC))
    collected = _attempt(lambda: load_history(history, codec=CODEC, collect_all=True))
    if strict is None or strict.event_id is None or not isinstance(collected, InvalidHistory):
        return
    # The strict error is the first problem met in a pass over the events, so collect-all
    # (the same pass, continued) must report it too ...
    assert any(e.event_id == strict.event_id and str(e) == str(strict) for e in collected.errors), (
        f"strict error {strict} missing from {collected.errors}"
    )
    # ... and, when the event ids run in order, as its first error.
    if _ids_in_order(history):
        assert collected.errors[0].event_id == strict.event_id
        assert str(collected.errors[0]) == str(strict)


# --- a few pinned corruptions of generated histories -------------------------------------------


def test_dropping_a_middle_event_is_a_gap_at_the_next_id() -> None:
    history = random_history(7)
    events = history["events"]
    assert len(events) > 5
    del events[3]  # event 4
    with pytest.raises(EventOutOfSequence) as info:
        load_history(history)
    assert info.value.event_id == 5
    with pytest.raises(InvalidHistory) as collected:
        load_history(history, collect_all=True)
    assert collected.value.errors[0].event_id == 5


def test_truncated_history_of_a_legal_run_is_legal() -> None:
    """Any prefix of a legal history is a legal (running) history: I1-I21 only look back."""
    codec = EventCodec()
    for seed in range(25):
        history = random_history(seed)
        events = history["events"]
        for cut in range(1, len(events) + 1):
            prefix = {"events": events[:cut]}
            load_history(prefix, codec=codec)


# --- transition coverage of the generator ---------------------------------------------------

Triple = tuple[Entity, str, EventType]
_RUN_UUID = uuid.UUID(int=1)


def exercised(histories: list[Json]) -> tuple[Counter[tuple[Entity, str]], set[Triple]]:
    """The (entity, event type) pairs the histories hold (via ROUTES), and the table
    transitions (entity, source state, event type) the validator takes on them."""
    pairs: Counter[tuple[Entity, str]] = Counter()
    triples: set[Triple] = set()
    codec = EventCodec()
    for history in histories:
        run: WorkflowRun | None = None
        for index, raw in enumerate(history["events"]):
            event = codec.decode(raw, originator_id=_RUN_UUID, index=index)
            entity = ROUTES[event.event_type][0]
            pairs[(entity, event.event_type.name)] += 1
            if run is None:
                assert isinstance(event, HistoryStarted)
                run = WorkflowRun.start(event)
                triples.add((Entity.RUN, ABSENT, event.event_type))
                continue
            entity, _key, rec, transition, failed = find_transition(run.state, event)
            assert transition is not None, failed
            triples.add((entity, rec.state if rec is not None else ABSENT, event.event_type))
            run.record(event)
    return pairs, triples


LEGAL_PAIRS = {
    (entity, event_type.name)
    for event_type, (entity, _key) in ROUTES.items()
    if event_type not in NEVER_WRITTEN
}
ALL_TRIPLES = {
    (entity, source, tr.event)
    for entity, table in TABLES.items()
    for tr in table
    for source in tr.sources
}
# Table cells a current server cannot reach, so the generator never produces them:
UNREACHABLE: dict[Triple, str] = {
    (Entity.ACTIVITY, "STARTED", EventType.ACTIVITY_TASK_CANCEL_REQUESTED): (
        "I11: ACTIVITY_TASK_STARTED is written only together with the terminal event, after"
        " the completion's command events, so a cancel request never follows it"
    ),
    **{
        (Entity.RUN, "PAUSED", event_type): (
            "PAUSED is buffered while a task is in flight (§1 Buf=B) and no task is scheduled"
            " while paused, so command events never follow a PAUSED before UNPAUSED"
        )
        for event_type in (
            EventType.MARKER_RECORDED,
            EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
            EventType.WORKFLOW_PROPERTIES_MODIFIED,
            EventType.WORKFLOW_EXECUTION_COMPLETED,
            EventType.WORKFLOW_EXECUTION_FAILED,
            EventType.WORKFLOW_EXECUTION_CANCELED,
            EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        )
    },
}


def test_generator_covers_the_transition_tables() -> None:
    histories = [random_history(seed, max_steps=40) for seed in range(300)]

    @hsettings(100, 2000)
    @given(legal_histories())
    def collect(history: Json) -> None:
        histories.append(history)

    collect()
    pairs, triples = exercised(histories)
    missing_pairs = sorted((e.value, t) for e, t in LEGAL_PAIRS - set(pairs))
    assert not missing_pairs, f"(entity, event type) pairs never generated: {missing_pairs}"
    assert UNREACHABLE.keys() <= ALL_TRIPLES
    reachable = ALL_TRIPLES - UNREACHABLE.keys()
    missing = sorted((e.value, s, t.name) for e, s, t in reachable - triples)
    assert not missing, f"table transitions never exercised: {missing}"
    assert not triples & UNREACHABLE.keys(), "a transition thought unreachable was generated"
    assert len(triples) / len(ALL_TRIPLES) > 0.9

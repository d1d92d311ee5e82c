"""Illegal variants of every real history in ../shared/conformance, each refused at its first
illegal event, in strict mode and as collect-all's first error.

Every run a scenario recorded (scenario.json `executions`) and every mid-run checkpoint is
mutated in one way at a time, so every event before the expected one is still legal:

- an event dropped (ids not renumbered: a gap; or renumbered: the event's entity misses it);
- an event duplicated (same id: a repeat; or renumbered: a second copy of a one-off event);
- the first event dropped;
- a reference pointed at the wrong event (`"1"`, never legal for these fields);
- anything after the close event (I2);
- a WORKFLOW_TASK_SCHEDULED / WORKFLOW_TASK_STARTED pair swapped, and an ACTIVITY_TASK_STARTED
  swapped with its terminal event;
- an unknown event type, not marked `workerMayIgnore` (strict mode refuses it there).

And the other side: an unknown event type marked `workerMayIgnore: true` is accepted in strict
mode, an unmarked one in lenient mode; both round-trip unchanged.
"""

from __future__ import annotations

import json
import os
import random
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runhistory import (
    EventOutOfSequence,
    HistoryError,
    IllegalTransition,
    InvalidHistory,
    UnknownEventType,
    dump_history,
    load_history,
)
from runhistory.adapters.codec import EventCodec

Json = dict[str, Any]
CONFORMANCE = Path(
    os.environ.get(
        "RUNHISTORY_CONFORMANCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "conformance"
    )
)
STRICT = EventCodec()
LENIENT = EventCodec(strict=False)

CLOSE = {
    "WORKFLOW_EXECUTION_COMPLETED",
    "WORKFLOW_EXECUTION_FAILED",
    "WORKFLOW_EXECUTION_TIMED_OUT",
    "WORKFLOW_EXECUTION_CANCELED",
    "WORKFLOW_EXECUTION_TERMINATED",
    "WORKFLOW_EXECUTION_CONTINUED_AS_NEW",
}
COMMAND = {
    "ACTIVITY_TASK_SCHEDULED",
    "ACTIVITY_TASK_CANCEL_REQUESTED",
    "TIMER_STARTED",
    "TIMER_CANCELED",
    "MARKER_RECORDED",
    "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED",
    "START_CHILD_WORKFLOW_EXECUTION_INITIATED",
    "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED",
    "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
    "WORKFLOW_PROPERTIES_MODIFIED",
    "NEXUS_OPERATION_SCHEDULED",
    "NEXUS_OPERATION_CANCEL_REQUESTED",
    "WORKFLOW_EXECUTION_COMPLETED",
    "WORKFLOW_EXECUTION_FAILED",
    "WORKFLOW_EXECUTION_CANCELED",
    "WORKFLOW_EXECUTION_CONTINUED_AS_NEW",
}
# The reference that ties an event to the entity it moves. Event 1 is never a legal target.
PRIMARY_REF = {
    **dict.fromkeys(
        (
            "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED",
            "WORKFLOW_TASK_FAILED",
            "WORKFLOW_TASK_TIMED_OUT",
            "ACTIVITY_TASK_STARTED",
            "ACTIVITY_TASK_COMPLETED",
            "ACTIVITY_TASK_FAILED",
            "ACTIVITY_TASK_TIMED_OUT",
            "ACTIVITY_TASK_CANCEL_REQUESTED",
            "ACTIVITY_TASK_CANCELED",
            "NEXUS_OPERATION_STARTED",
            "NEXUS_OPERATION_COMPLETED",
            "NEXUS_OPERATION_FAILED",
            "NEXUS_OPERATION_CANCELED",
            "NEXUS_OPERATION_TIMED_OUT",
            "NEXUS_OPERATION_CANCEL_REQUESTED",
            "NEXUS_OPERATION_CANCEL_REQUEST_COMPLETED",
            "NEXUS_OPERATION_CANCEL_REQUEST_FAILED",
        ),
        "scheduledEventId",
    ),
    "TIMER_FIRED": "startedEventId",
    "TIMER_CANCELED": "startedEventId",
    **dict.fromkeys(
        (
            "START_CHILD_WORKFLOW_EXECUTION_FAILED",
            "CHILD_WORKFLOW_EXECUTION_STARTED",
            "CHILD_WORKFLOW_EXECUTION_COMPLETED",
            "CHILD_WORKFLOW_EXECUTION_FAILED",
            "CHILD_WORKFLOW_EXECUTION_CANCELED",
            "CHILD_WORKFLOW_EXECUTION_TIMED_OUT",
            "CHILD_WORKFLOW_EXECUTION_TERMINATED",
            "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED",
            "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED",
            "EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED",
            "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED",
        ),
        "initiatedEventId",
    ),
    "WORKFLOW_EXECUTION_UPDATE_COMPLETED": "acceptedEventId",
}
# Further references the transition guards compare with the entity (§2.1).
SECONDARY_REF = {
    **dict.fromkeys(
        (
            "WORKFLOW_TASK_COMPLETED",
            "WORKFLOW_TASK_FAILED",
            "WORKFLOW_TASK_TIMED_OUT",
            "ACTIVITY_TASK_COMPLETED",
            "ACTIVITY_TASK_FAILED",
            "ACTIVITY_TASK_TIMED_OUT",
            "ACTIVITY_TASK_CANCELED",
            "CHILD_WORKFLOW_EXECUTION_COMPLETED",
            "CHILD_WORKFLOW_EXECUTION_FAILED",
            "CHILD_WORKFLOW_EXECUTION_CANCELED",
            "CHILD_WORKFLOW_EXECUTION_TIMED_OUT",
            "CHILD_WORKFLOW_EXECUTION_TERMINATED",
        ),
        "startedEventId",
    ),
    "NEXUS_OPERATION_CANCEL_REQUEST_COMPLETED": "requestedEventId",
    "NEXUS_OPERATION_CANCEL_REQUEST_FAILED": "requestedEventId",
}
# A second copy of one of these, right after the first, is never legal.
ONE_OFF = {
    "WORKFLOW_EXECUTION_STARTED",
    "WORKFLOW_EXECUTION_CANCEL_REQUESTED",
    "WORKFLOW_EXECUTION_PAUSED",
    "WORKFLOW_EXECUTION_UNPAUSED",
    "WORKFLOW_TASK_SCHEDULED",
    "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED",
    "WORKFLOW_TASK_FAILED",
    "WORKFLOW_TASK_TIMED_OUT",
    "ACTIVITY_TASK_SCHEDULED",
    "ACTIVITY_TASK_STARTED",
    "ACTIVITY_TASK_COMPLETED",
    "ACTIVITY_TASK_FAILED",
    "ACTIVITY_TASK_TIMED_OUT",
    "ACTIVITY_TASK_CANCEL_REQUESTED",
    "ACTIVITY_TASK_CANCELED",
    "TIMER_STARTED",
    "TIMER_FIRED",
    "TIMER_CANCELED",
    "CHILD_WORKFLOW_EXECUTION_STARTED",
    "CHILD_WORKFLOW_EXECUTION_COMPLETED",
    "CHILD_WORKFLOW_EXECUTION_FAILED",
    "CHILD_WORKFLOW_EXECUTION_CANCELED",
    "CHILD_WORKFLOW_EXECUTION_TIMED_OUT",
    "CHILD_WORKFLOW_EXECUTION_TERMINATED",
    "START_CHILD_WORKFLOW_EXECUTION_FAILED",
    "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED",
    "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED",
    "EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED",
    "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED",
    "NEXUS_OPERATION_STARTED",
    "NEXUS_OPERATION_COMPLETED",
    "NEXUS_OPERATION_FAILED",
    "NEXUS_OPERATION_CANCELED",
    "NEXUS_OPERATION_TIMED_OUT",
    "NEXUS_OPERATION_CANCEL_REQUESTED",
    "NEXUS_OPERATION_CANCEL_REQUEST_COMPLETED",
    "NEXUS_OPERATION_CANCEL_REQUEST_FAILED",
    "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
    "WORKFLOW_EXECUTION_UPDATE_COMPLETED",
    *CLOSE,
}
# References into another run's history: never renumbered.
OTHER_RUN_REFS = {"parentInitiatedEventId", "externalInitiatedEventId"}


# --- the recordings -----------------------------------------------------------------------


def recordings() -> list[tuple[str, Json]]:
    """(label, history) for every recorded run and checkpoint, in a stable order."""
    found: list[tuple[str, Json]] = []
    for scenario in sorted(CONFORMANCE.glob("*/scenario.json")):
        folder = scenario.parent
        meta = json.loads(scenario.read_text())
        for execution in meta["executions"]:
            history = json.loads((folder / execution["history"]).read_text())
            found.append((f"{folder.name}/{execution['history']}", history))
        for checkpoint in meta.get("checkpoints", []):
            history = json.loads((folder / checkpoint["file"]).read_text())["history"]
            found.append((f"{folder.name}/{checkpoint['file']}", history))
    return found


RECORDINGS = recordings()


def test_recordings_are_there_and_legal() -> None:
    assert len(RECORDINGS) >= 100
    for label, history in RECORDINGS:
        run = load_history(history, codec=STRICT)
        assert dump_history(run, codec=STRICT) == history, label


# --- helpers ------------------------------------------------------------------------------


def etype(event: Json) -> str:
    name: str = event["eventType"]
    return name.removeprefix("EVENT_TYPE_")


def attrs_key(event: Json) -> str:
    return next(k for k in event if k.endswith("EventAttributes"))


def attrs(event: Json) -> Json:
    value: Json = event[attrs_key(event)]
    return value


def eid(event: Json) -> int:
    return int(event["eventId"])


def durable(history: Json) -> list[Json]:
    """The events with a taskId: the not-yet-durable workflow-task tail (I13) is left out.
    Mutations never change these dicts; they copy what they change."""
    return [e for e in history["events"] if "taskId" in e]


def edited(event: Json, **changes: str) -> Json:
    """A copy of `event` with some attributes changed."""
    key = attrs_key(event)
    return {**event, key: {**event[key], **changes}}


def shifted(events: list[Json], after: int, delta: int) -> list[Json]:
    """Renumbered copies: ids and same-run references above `after` move by `delta`."""
    out = []
    for event in events:
        refs = {
            key: str(int(value) + delta)
            for key, value in attrs(event).items()
            if key.endswith("EventId") and key not in OTHER_RUN_REFS and int(value) > after
        }
        if refs or eid(event) > after:
            event = edited(event, **refs)
            if eid(event) > after:
                event["eventId"] = str(eid(event) + delta)
        out.append(event)
    return out


def entity_key(event: Json) -> tuple[str, str] | None:
    """Which activity / timer / child / update / Nexus cancel an event moves."""
    kind, a = etype(event), attrs(event)
    if kind.startswith("ACTIVITY_TASK_") and kind != "ACTIVITY_TASK_SCHEDULED":
        return "activity", a["scheduledEventId"]
    if kind.startswith("TIMER_"):
        return "timer", a["timerId"]
    if kind.startswith("CHILD_WORKFLOW_EXECUTION_"):
        return "child", a["initiatedEventId"]
    if kind.startswith("WORKFLOW_EXECUTION_UPDATE_"):
        meta = a.get("meta") or a.get("acceptedRequest", {}).get("meta", {})
        return "update", a.get("protocolInstanceId") or meta.get("updateId", "")
    if kind.startswith("NEXUS_OPERATION_CANCEL_REQUEST"):
        return "nexus cancel", a["scheduledEventId"]
    return None


# --- the mutations ------------------------------------------------------------------------

Mutation = tuple[str, Json, int, type[HistoryError]]


def _gap_and_repeat(ev: list[Json], rng: random.Random) -> Iterator[Mutation]:
    n = len(ev)
    for k in {2, n - 1, rng.randint(2, n - 1)}:  # drop event k: event k+1 follows k-1
        yield f"gap@{k}", {"events": ev[: k - 1] + ev[k:]}, k + 1, EventOutOfSequence
    for k in {1, n, rng.randint(1, n)}:  # a second event k right after the first
        events = [*ev[:k], ev[k - 1], *ev[k:]]
        yield f"repeat@{k}", {"events": events}, k, EventOutOfSequence
    yield "drop_first", {"events": ev[1:]}, 2, IllegalTransition


def _first_later(ev: list[Json], k: int, key: tuple[str, str], kinds: set[str]) -> int | None:
    for event in ev[k:]:
        if etype(event) in kinds and entity_key(event) == key:
            return eid(event)
    return None


def _dropped_renumbered(ev: list[Json], rng: random.Random) -> Iterator[Mutation]:
    """Drop an event and renumber the rest: the first later event that needed it is refused."""
    candidates: list[tuple[int, int]] = []  # (position, original id of the refused event)
    for i, event in enumerate(ev):
        kind, k = etype(event), eid(event)
        want: int | None = None
        if kind in ("WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED") and i + 1 < len(ev):
            want = eid(ev[i + 1])  # I5: the task is still scheduled / still in flight
        elif kind == "ACTIVITY_TASK_STARTED":
            key = ("activity", attrs(event)["scheduledEventId"])
            want = _first_later(ev, k, key, {"ACTIVITY_TASK_" + s for s in _TERMINAL})
        elif kind == "TIMER_STARTED":
            key = ("timer", attrs(event)["timerId"])
            want = _first_later(ev, k, key, {"TIMER_FIRED", "TIMER_CANCELED"})
        elif kind == "CHILD_WORKFLOW_EXECUTION_STARTED":
            key = ("child", attrs(event)["initiatedEventId"])
            want = _first_later(ev, k, key, {"CHILD_WORKFLOW_EXECUTION_" + s for s in _CLOSED})
        elif kind == "WORKFLOW_EXECUTION_UPDATE_ACCEPTED":
            key = ("update", attrs(event)["protocolInstanceId"])
            want = _first_later(ev, k, key, {"WORKFLOW_EXECUTION_UPDATE_COMPLETED"})
        elif kind == "ACTIVITY_TASK_CANCEL_REQUESTED":
            key = ("activity", attrs(event)["scheduledEventId"])
            want = _first_later(ev, k, key, {"ACTIVITY_TASK_CANCELED"})
        elif kind == "NEXUS_OPERATION_CANCEL_REQUESTED":
            key = ("nexus cancel", attrs(event)["scheduledEventId"])
            kinds = {
                "NEXUS_OPERATION_CANCEL_REQUEST_COMPLETED",
                "NEXUS_OPERATION_CANCEL_REQUEST_FAILED",
            }
            want = _first_later(ev, k, key, kinds)
        if want is not None:
            candidates.append((i, want))
    by_kind: dict[str, list[tuple[int, int]]] = {}
    for i, want in candidates:
        by_kind.setdefault(etype(ev[i]), []).append((i, want))
    for kind, options in sorted(by_kind.items()):
        i, want = rng.choice(options)
        events = shifted([*ev[:i], *ev[i + 1 :]], eid(ev[i]), -1)
        yield f"drop_renumbered:{kind}@{i + 1}", {"events": events}, want - 1, IllegalTransition


_TERMINAL = ("COMPLETED", "FAILED", "TIMED_OUT", "CANCELED")
_CLOSED = ("COMPLETED", "FAILED", "CANCELED", "TIMED_OUT", "TERMINATED")


def _duplicated_renumbered(ev: list[Json], rng: random.Random) -> Iterator[Mutation]:
    """A second copy of a one-off event, as the next event (ids after it renumbered)."""
    by_kind: dict[str, list[int]] = {}
    for i, event in enumerate(ev):
        if etype(event) in ONE_OFF:
            by_kind.setdefault(etype(event), []).append(i)
    for kind, positions in sorted(by_kind.items()):
        i = rng.choice(positions)
        k = eid(ev[i])
        events = shifted(ev, k, +1)
        events.insert(i + 1, {**ev[i], "eventId": str(k + 1)})
        yield f"duplicate_renumbered:{kind}@{k}", {"events": events}, k + 1, IllegalTransition


def _bad_references(ev: list[Json], rng: random.Random) -> Iterator[Mutation]:
    """One reference per (event type, field) pointed at event 1."""
    seen: dict[tuple[str, str], list[int]] = {}
    for i, event in enumerate(ev):
        kind = etype(event)
        fields = [PRIMARY_REF.get(kind), SECONDARY_REF.get(kind)]
        if kind in COMMAND:
            fields.append("workflowTaskCompletedEventId")
        for name in fields:
            if name is not None and attrs(event).get(name, "0") != "1":
                seen.setdefault((kind, name), []).append(i)
    for (kind, name), positions in sorted(seen.items()):
        i = rng.choice(positions)
        events = list(ev)
        events[i] = edited(ev[i], **{name: "1"})
        yield f"bad_ref:{kind}.{name}@{i + 1}", {"events": events}, eid(ev[i]), IllegalTransition


def _after_close(ev: list[Json]) -> Iterator[Mutation]:
    if etype(ev[-1]) not in CLOSE:
        return
    n, last_task = len(ev), int(ev[-1]["taskId"])
    extras: list[Json] = [ev[-1]]  # a second close event
    extras += [e for e in ev if etype(e) == "WORKFLOW_TASK_SCHEDULED"][:1]
    extras += [e for e in ev if etype(e) == "WORKFLOW_EXECUTION_SIGNALED"][:1]
    for extra in extras:
        late = {**extra, "eventId": str(n + 1), "taskId": str(last_task + 2)}
        yield f"after_close:{etype(extra)}", {"events": [*ev, late]}, n + 1, IllegalTransition


def _swap_content(ev: list[Json], i: int) -> Json:
    """Events i and i+1 trade type and attributes; ids, times and task ids stay in place."""
    events = list(ev)
    a, b = dict(ev[i]), dict(ev[i + 1])
    a["eventType"], b["eventType"] = b["eventType"], a["eventType"]
    ka, kb = attrs_key(a), attrs_key(b)
    a[kb], b[ka] = b.pop(kb), a.pop(ka)
    events[i], events[i + 1] = a, b
    return {"events": events}


def _swaps(ev: list[Json], rng: random.Random) -> Iterator[Mutation]:
    wft = [
        i
        for i in range(len(ev) - 1)
        if etype(ev[i]) == "WORKFLOW_TASK_SCHEDULED" and etype(ev[i + 1]) == "WORKFLOW_TASK_STARTED"
    ]
    for i in sorted({wft[0], rng.choice(wft)} if wft else set()):
        yield f"swap_wft@{i + 1}", _swap_content(ev, i), eid(ev[i]), IllegalTransition
    activity = [
        i
        for i in range(len(ev) - 1)
        if etype(ev[i]) == "ACTIVITY_TASK_STARTED"
        and etype(ev[i + 1]).removeprefix("ACTIVITY_TASK_") in _TERMINAL
    ]
    if activity:
        i = rng.choice(activity)
        yield f"swap_activity@{i + 1}", _swap_content(ev, i), eid(ev[i]), IllegalTransition


FUTURE_TYPE = "EVENT_TYPE_WORKFLOW_EXECUTION_FROM_THE_FUTURE"
FUTURE_KEY = "workflowExecutionFromTheFutureEventAttributes"


def _unknown_types(ev: list[Json], rng: random.Random) -> Iterator[Mutation]:
    for i in {0, len(ev) - 1, rng.randrange(len(ev))}:
        events = list(ev)
        events[i] = event = dict(ev[i])
        event[FUTURE_KEY] = event.pop(attrs_key(event))
        event["eventType"] = FUTURE_TYPE
        event.pop("workerMayIgnore", None)
        yield f"unknown_type@{i + 1}", {"events": events}, eid(ev[i]), UnknownEventType


LONG = 300


def mutations(label: str, history: Json) -> list[Mutation]:
    full = durable(history)
    rng = random.Random(zlib.crc32(label.encode()))
    if len(full) < 3:
        return []
    ev = full[:LONG]  # a prefix of a legal history is legal: long runs are mutated early on
    end: list[Mutation] = []
    if len(full) > LONG:
        n = len(full)
        end = [("gap@end", {"events": [*full[:-2], full[-1]]}, n, EventOutOfSequence)]
    return [
        *end,
        *_gap_and_repeat(ev, rng),
        *_dropped_renumbered(ev, rng),
        *_duplicated_renumbered(ev, rng),
        *_bad_references(ev, rng),
        *_after_close(full),
        *_swaps(ev, rng),
        *_unknown_types(ev, rng),
    ]


def _refusal(history: Json, **kwargs: Any) -> HistoryError | None:
    try:
        load_history(history, codec=STRICT, **kwargs)
    except HistoryError as e:
        return e
    return None


@pytest.mark.parametrize(("label", "history"), RECORDINGS, ids=[lb for lb, _ in RECORDINGS])
def test_illegal_variants_are_refused_at_their_first_illegal_event(
    label: str, history: Json
) -> None:
    wrong: list[str] = []
    variants = mutations(label, history)
    assert variants, "every recording is long enough to mutate"
    for name, doc, expected, error_class in variants:
        strict = _refusal(doc)
        if strict is None:
            wrong.append(f"{name}: accepted, expected a refusal at event {expected}")
            continue
        if strict.event_id != expected or not isinstance(strict, error_class):
            wrong.append(f"{name}: expected {error_class.__name__} at {expected}, got {strict!r}")
        if isinstance(strict, IllegalTransition) and not isinstance(strict, EventOutOfSequence):
            assert str(expected) in str(strict) and strict.event_type, name
        collected = _refusal(doc, collect_all=True)
        if not isinstance(collected, InvalidHistory):
            wrong.append(f"{name}: collect-all raised {collected!r}, not InvalidHistory")
        elif collected.errors[0].event_id != expected:
            first = collected.errors[0]
            wrong.append(f"{name}: collect-all's first error is {first!r}, expected {expected}")
    assert not wrong, "\n".join(wrong)


def test_every_kind_of_mutation_is_made() -> None:
    """The mutation families all apply somewhere in the recordings."""
    made = {
        name.split("@")[0].split(":")[0] for lb, h in RECORDINGS for name, *_ in mutations(lb, h)
    }
    assert made == {
        "gap",
        "repeat",
        "drop_first",
        "drop_renumbered",
        "duplicate_renumbered",
        "bad_ref",
        "after_close",
        "swap_wft",
        "swap_activity",
        "unknown_type",
    }


def test_after_close_names_rule_i2() -> None:
    label, history = next((lb, h) for lb, h in RECORDINGS if lb.endswith("/history.json"))
    _name, doc, expected, _ = next(m for m in mutations(label, history) if m[0].startswith("after"))
    error = _refusal(doc)
    assert isinstance(error, IllegalTransition)
    assert error.rule == "I2" and error.state == "CLOSED" and error.event_id == expected


# --- unknown event types that are allowed -------------------------------------------------


def _insertion_points(ev: list[Json]) -> list[int]:
    """Transaction boundaries (a taskId gap) not inside an in-flight workflow task: the places a
    server could write an event of a type this library does not know."""
    points = []
    for i in range(1, len(ev)):
        gap = int(ev[i]["taskId"]) - int(ev[i - 1]["taskId"]) > 1
        if gap and etype(ev[i - 1]) != "WORKFLOW_TASK_STARTED":
            points.append(i)
    if etype(ev[-1]) not in CLOSE and etype(ev[-1]) != "WORKFLOW_TASK_STARTED":
        points.append(len(ev))
    return points


def with_future_event(ev: list[Json], position: int, *, ignorable: bool) -> Json:
    """The history with an event of an unknown type inserted before index `position`."""
    events = shifted(ev, position, +1)
    previous = ev[position - 1]
    future: Json = {
        "eventId": str(position + 1),
        "eventTime": previous["eventTime"],
        "eventType": FUTURE_TYPE,
        "taskId": str(int(previous["taskId"]) + 1),
        FUTURE_KEY: {"reason": "added by a newer server", "count": "3", "nested": {"x": [1, 2]}},
    }
    if ignorable:
        future["workerMayIgnore"] = True
    events.insert(position, future)
    return {"events": events}


def _future_variants() -> list[tuple[str, list[Json], int]]:
    cases = []
    for label, history in RECORDINGS:
        ev = durable(history)
        points = _insertion_points(ev)
        rng = random.Random(zlib.crc32(label.encode()))
        chosen = sorted({points[0], rng.choice(points)} if points else set())
        cases += [(f"{label}@{position + 1}", ev, position) for position in chosen]
    return cases


FUTURE_VARIANTS = _future_variants()


def test_unknown_event_types_have_places_to_go() -> None:
    assert len(FUTURE_VARIANTS) >= len(RECORDINGS)


@pytest.mark.parametrize(
    ("name", "ev", "position"), FUTURE_VARIANTS, ids=[c[0] for c in FUTURE_VARIANTS]
)
def test_unknown_event_type_marked_ignorable_is_accepted_in_strict_mode(
    name: str, ev: list[Json], position: int
) -> None:
    doc = with_future_event(ev, position, ignorable=True)
    run = load_history(doc, codec=STRICT)
    assert dump_history(run, codec=STRICT) == doc
    assert len(run.history) == len(ev) + 1
    assert run.history[position].originator_version == position + 1


@pytest.mark.parametrize(
    ("name", "ev", "position"), FUTURE_VARIANTS, ids=[c[0] for c in FUTURE_VARIANTS]
)
def test_unknown_event_type_not_marked_is_accepted_only_in_lenient_mode(
    name: str, ev: list[Json], position: int
) -> None:
    doc = with_future_event(ev, position, ignorable=False)
    run = load_history(doc, codec=LENIENT, strict=False)
    assert dump_history(run, codec=LENIENT) == doc
    with pytest.raises(UnknownEventType) as info:
        load_history(doc, codec=STRICT)
    assert info.value.event_id == position + 1
    assert info.value.event_type == FUTURE_TYPE
    assert FUTURE_TYPE in str(info.value) and str(position + 1) in str(info.value)


def test_public_entry_points_without_a_shared_codec() -> None:
    """The same two answers through load_history's defaults (no codec passed)."""
    _name, ev, position = FUTURE_VARIANTS[0]
    ignorable = with_future_event(ev, position, ignorable=True)
    plain = with_future_event(ev, position, ignorable=False)
    assert dump_history(load_history(ignorable)) == ignorable
    assert dump_history(load_history(plain, strict=False)) == plain
    with pytest.raises(UnknownEventType):
        load_history(plain)

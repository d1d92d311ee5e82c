"""What a store can read off a stored history event without the domain: its queryable columns.

History events are stored as canonical Temporal event JSON (see `runhistory.adapters.mapper`),
so a store can index them: event id, type, time, which key holds the attributes, and, on the
started event, the run's key (`runKey`). Events of other applications, or encrypted/compressed
states, yield None.

This is the one implementation of those columns. `column_values` reads them off the stored text
(one JSON parse per event and no other object built); `document_columns` off the JSON object a
mapper is about to serialise, and `time_column` off the Timestamp its codec formats, so that a
mapper can hand them to the store (`IndexedStoredEvent`); `history_columns` is the same reading
with the parsed document, the time as a datetime and the attributes object.

The columns of a readable history event (a topic starting `runhistory:` and a state that is a
JSON object):
- `event_id`: `int(eventId)`, 0 when that is not an integer or not an int64;
- `event_type`: `str(eventType)` without the `EVENT_TYPE_` prefix (`ACTIVITY_TASK_FAILED`);
- `event_time`: `eventTime` in UTC, truncated to microseconds (the JSON keeps the nanoseconds),
  None when it is not a time;
- `attributes_key`: the key named after the event type (`activityTaskFailedEventAttributes` for
  `ACTIVITY_TASK_FAILED`, as Temporal names it) if it holds an object, else the first key of
  ASCII letters and digits that ends in `EventAttributes` and holds an object, or None;
- `run_key`: (namespace, workflow id, run id) from a `runKey` object, or None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

__all__ = [
    "HISTORY_TOPIC_PREFIX",
    "ColumnValues",
    "EventColumns",
    "ColumnsMapper",
    "IndexedStoredEvent",
    "RunKeyColumns",
    "RunKeyValues",
    "column_values",
    "document_columns",
    "document_head",
    "id_column",
    "history_columns",
    "time_column",
]

HISTORY_TOPIC_PREFIX = "runhistory:"
_EVENT_TYPE_PREFIX = "EVENT_TYPE_"
_ATTRIBUTES_SUFFIX = "EventAttributes"

# (namespace, workflow_id, run_id)
RunKeyValues = tuple[str, str, str]
# (event_id, event_type, event_time as "YYYY-MM-DD HH:MM:SS.ffffff" in UTC, attributes_key,
#  run key): what `column_values` reads.
ColumnValues = tuple[int, str, str | None, str | None, RunKeyValues | None]

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_fromisoformat = datetime.fromisoformat


@dataclass(frozen=True, slots=True)
class RunKeyColumns:
    namespace: str
    workflow_id: str
    run_id: str


@dataclass(frozen=True, slots=True)
class EventColumns:
    """The columns (see the module docstring), with `event_time` as an aware UTC datetime and
    the parsed `document`."""

    event_id: int
    event_type: str
    event_time: datetime | None
    attributes_key: str | None
    run_key: RunKeyColumns | None
    document: dict[str, Any]

    @property
    def attributes(self) -> dict[str, Any] | None:
        """The event's attributes object (`activityTaskFailedEventAttributes`), or None."""
        if self.attributes_key is None:
            return None
        value: dict[str, Any] = self.document[self.attributes_key]
        return value


@dataclass(frozen=True)
class IndexedStoredEvent(StoredEvent):
    """A stored history event that carries its columns, read by the mapper from the JSON object
    it serialised (`document_columns`), so a store that indexes them need not parse `state`.

    A store trusts `columns` only on this exact class, which `HistoryMapper` makes when a store
    asks for it (`wants_store_columns`) and `state` is the plain JSON text; they equal
    `column_values(topic, state)`. Any other stored event is read the usual way."""

    columns: ColumnValues

    def __init__(
        self,
        originator_id: UUID | str,
        originator_version: int,
        topic: str,
        state: bytes,
        columns: ColumnValues,
    ) -> None:
        # One write of the instance dict, where the frozen dataclass's own __init__ makes five
        # `object.__setattr__` calls: this runs once per event imported.
        self.__dict__.update(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=state,
            columns=columns,
        )


@runtime_checkable
class ColumnsMapper(Protocol):
    """A mapper that can hand a store each history event's columns (`IndexedStoredEvent`). A
    store that indexes them sets `store_columns` on the mapper its factory makes; off by default,
    since other stores would only carry them."""

    store_columns: bool


def history_columns(topic: str, state: bytes) -> EventColumns | None:
    """The columns of a stored history event, with its parsed document; None if it is not a
    readable one."""
    values = column_values(topic, state)
    if values is None:
        return None
    event_id, event_type, when, attributes_key, run_key = values
    return EventColumns(
        event_id,
        event_type,
        _fromisoformat(when).replace(tzinfo=UTC) if when is not None else None,
        attributes_key,
        RunKeyColumns(*run_key) if run_key is not None else None,
        _loads(state),  # parsed again: this is not the hot path, `column_values` is
    )


def column_values(topic: str, state: bytes) -> ColumnValues | None:
    """The columns of a stored history event, or None if it is not a readable one.

    Each column has a fast branch for the canonical shape (what `HistoryMapper` writes), since
    this runs for every event imported, and falls back to the general rule on anything else,
    with the same result (a test checks both on every real history and on odd and mutated
    events)."""
    if not topic.startswith(HISTORY_TOPIC_PREFIX) or state[:1] != b"{":
        return None
    try:
        doc = _loads(state)  # a valid JSON text that starts with "{" is an object
    except _JSONDecodeError:
        return None
    return document_columns(doc)


def document_columns(
    doc: dict[str, Any], head: tuple[int, str, str | None] | None = None
) -> ColumnValues:
    """The columns of a history event's JSON object, parsed or about to be serialised: what
    `column_values` gives for its JSON text. A mapper that has the object in hand reads them
    here rather than a store parsing the text again (see `IndexedStoredEvent`).

    `head`: (event_id, event_type, the attributes key named after the type), when the caller
    knows what this function would read from `eventId` and `eventType` (a mapper that wrote
    them: `HistoryMapper` keeps what it read for each event class)."""
    if head is None:
        head = document_head(doc)
    event_id, event_type, named = head
    text: Any = doc.get("eventTime")
    when: str | None
    if type(text) is str and (
        _canonical_early_time(text) or (_canonical_time(text) and text[:10] in _REAL_DATES)
    ):
        # 'YYYY-MM-DDTHH:MM:SS.<1-9 digits>Z' -> 'YYYY-MM-DD HH:MM:SS.<6 digits>'
        length = len(text)
        if length >= 27:
            when = text.replace("T", " ", 1)[:26]
        else:
            when = text.replace("T", " ", 1)[:-1] + "00000"[: 27 - length]
    else:
        when = _time(text)
    attributes_key = named
    if named is None or type(doc.get(named)) is not dict:
        shape = tuple(doc)
        candidates = _CANDIDATES.get(shape)
        if candidates is None:
            candidates = _candidates(shape)
        attributes_key = next((name for name in candidates if type(doc[name]) is dict), None)
    key = doc.get("runKey")
    run_key = None
    if type(key) is dict:
        run_key = (
            str(key.get("namespace", "default")),
            str(key.get("workflowId", "")),
            str(key.get("runId", "")),
        )
    return event_id, event_type, when, attributes_key, run_key


def document_head(doc: dict[str, Any]) -> tuple[int, str, str | None]:
    """What `document_columns` reads from `eventId` and `eventType`: the event id, the event
    type and the attributes key named after it."""
    raw_id: Any = doc.get("eventId", 0)
    try:
        event_id = int(raw_id)
    except (TypeError, ValueError, OverflowError):
        event_id = 0
    if not _MIN_ID <= event_id <= _MAX_ID:
        event_id = 0
    raw_type: Any = doc.get("eventType", "")
    known = _EVENT_TYPES.get(raw_type) if type(raw_type) is str else None
    event_type, named = known if known is not None else _event_type(raw_type)
    return event_id, event_type, named


def id_column(event_id: int) -> int:
    """The `event_id` column of an integer event id: 0 unless it is an int64."""
    return event_id if _MIN_ID <= event_id <= _MAX_ID else 0


def time_column(seconds: int, nanos: int) -> str | None:
    """The `event_time` column of a protobuf Timestamp (seconds since the Unix epoch, nanos):
    what `document_columns` reads from its canonical text, without reading the text. None when
    there is no such text (a time outside 0001..9999, or nanos outside 0..999,999,999): then
    read the text."""
    if not 0 <= nanos < 1_000_000_000:
        return None
    head = _SECOND_TEXTS.get(seconds)
    if head is None:
        if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
            return None
        if len(_SECOND_TEXTS) >= _CACHE_SIZE:
            _SECOND_TEXTS.clear()
        head = (_EPOCH + timedelta(seconds=seconds)).isoformat(" ")
        _SECOND_TEXTS[seconds] = head
    return f"{head}.{nanos // 1000:06d}"


# An event id is an int64 (a column of that type holds it); anything else reads as 0.
_MIN_ID = -(2**63)
_MAX_ID = 2**63 - 1
# The canonical time: ASCII digits, hours, minutes and seconds in range, a 1-9 digit fraction.
_CLOCK = r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{1,9}Z"
_canonical_time = re.compile(r"\d{4}-\d\d-\d\d" + _CLOCK, re.ASCII).fullmatch
# ... on a day that every month of every year has: no need to ask whether the date is real.
_canonical_early_time = re.compile(
    r"(?!0000)\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])" + _CLOCK, re.ASCII
).fullmatch
# Caches of what the general rules found, so the fast branches need not ask again: dates
# (`YYYY-MM-DD`) of canonical times that `datetime` read; per event type, the type without its
# prefix and the attributes key named after it; per shape of document (its keys, in order), the
# keys that may hold the attributes. Each is cleared if odd input ever fills it.
_REAL_DATES: set[str] = set()
_EVENT_TYPES: dict[str, tuple[str, str | None]] = {}
_CANDIDATES: dict[tuple[str, ...], tuple[str, ...]] = {}
# Per second since the epoch, its `event_time` text up to the fraction (events come in bursts
# within a second, and the date and clock cost more to format than the fraction).
_SECOND_TEXTS: dict[int, str] = {}
_CACHE_SIZE = 4096
# The protobuf Timestamp range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62135596800
_MAX_SECONDS = 253402300799
_EPOCH = datetime(1970, 1, 1)


def _event_type(raw: Any) -> tuple[str, str | None]:
    """The event type without its prefix, and the attributes key named after it
    (`EVENT_TYPE_ACTIVITY_TASK_FAILED` -> `activityTaskFailedEventAttributes`), if that is made
    of ASCII letters and digits."""
    text = str(raw)
    event_type = text[11:] if text.startswith(_EVENT_TYPE_PREFIX) else text
    first, *rest = event_type.split("_")
    key = first.lower() + "".join(word.capitalize() for word in rest) + _ATTRIBUTES_SUFFIX
    named = key if key.isascii() and key.isalnum() else None
    if type(raw) is str:
        if len(_EVENT_TYPES) >= _CACHE_SIZE:
            _EVENT_TYPES.clear()
        _EVENT_TYPES[raw] = event_type, named
    return event_type, named


def _time(text: Any) -> str | None:
    """`eventTime` by the general rule: any shape `datetime.fromisoformat` reads (plus a fraction
    of any length), as UTC text truncated to microseconds; None when it is not a time."""
    if not isinstance(text, str) or len(text) < 20:
        return None
    try:
        head, _, frac = text.rstrip("Zz").partition(".")
        micros = int((frac + "000000")[:6]) if frac else 0
        when = _fromisoformat(head).replace(microsecond=micros)
    except ValueError:
        return None
    if _canonical_time(text):  # then `head` was its date and time: the date is real
        if len(_REAL_DATES) >= _CACHE_SIZE:
            _REAL_DATES.clear()
        _REAL_DATES.add(text[:10])
    return when.isoformat(" ", "microseconds")[:26]


def _candidates(shape: tuple[str, ...]) -> tuple[str, ...]:
    if len(_CANDIDATES) >= _CACHE_SIZE:
        _CANDIDATES.clear()
    candidates = tuple(
        name
        for name in shape
        if name.endswith(_ATTRIBUTES_SUFFIX) and name.isascii() and name.isalnum()
    )
    _CANDIDATES[shape] = candidates
    return candidates

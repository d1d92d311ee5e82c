"""Temporal proto3 JSON <-> runhistory domain objects, losslessly and fast.

Input may be canonical (`temporal workflow show -o json`, protobuf `MessageToDict`) or the older
tctl / Web UI flavour (PascalCase enums), with int64 values as strings or numbers. Output is
canonical: keys in proto field-number order, defaults omitted, int64 as strings, enums by full
name, unknown keys written back after the known ones. `encode(decode(e)) == e` holds for every
history a Temporal server writes, including keys this API version does not know.

Message hooks are compiled from `runhistory.domain.schema` (see `_json_hooks`) and registered
on a private `cattrs.Converter`, the registry behind `decode_message` / `encode_message`. The
event envelope, the hottest path, is compiled here too: one function per event type, with the
attributes hook taken from that registry. 50,000 events decode in well under a second.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

import cattrs

from runhistory.adapters._json_hooks import (
    CONVERSION_ERRORS,
    TS_PREFIX,
    TS_TWIN,
    BadValue,
    compile_hooks,
    copy_json,
    enum_names,
    enum_table,
    extra_keys,
    f_duration,
    f_timestamp,
    json_name,
    x_bool,
    x_duration,
    x_enum,
    x_event_time,
    x_int64,
    x_object,
    x_repeated,
)
from runhistory.domain import messages as m
from runhistory.domain.enums import PROTO_PREFIX, EventType
from runhistory.domain.errors import MalformedHistory, UnknownEventType
from runhistory.domain.event_base import HistoryEvent, HistoryStarted, UnknownEvent
from runhistory.domain.events import EVENT_CLASSES
from runhistory.domain.schema import ATTRIBUTES, ENVELOPE, FIELDS
from runhistory.domain.timeval import Duration, Timestamp

__all__ = ["RUN_TOPIC", "EventCodec"]

T = TypeVar("T")
Fn = Callable[..., Any]

RUN_TOPIC = "runhistory:WorkflowRun"
"""`originator_topic` of every `HistoryStarted`: the aggregate class the history builds."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_new = object.__new__
# Events are built without their frozen `__init__` (which also only calls this per field, plus
# a UUID check done once in `decode`); setting fields one by one keeps CPython 3.11's inline
# attribute values, where a whole `__dict__` would be one more object for the GC per event.
_set_attr = object.__setattr__
_ENVELOPE_KEYS = frozenset(json_name(f.name) for f in ENVELOPE)
_ENVELOPE_ALIASES = {f.name: json_name(f.name) for f in ENVELOPE if f.name != json_name(f.name)}
# Envelope fields that real histories rarely carry: one set test (COMMON) skips them all.
_RARE_KEYS = frozenset(
    ("workerMayIgnore", "userMetadata", "links", "principal", "eventGroupMarkers")
)
_EVENT_TYPE_NAMES = enum_table(EventType)
_TYPE_NAME = {et: enum_names(EventType)[et] for et in ATTRIBUTES}
_ATTRIBUTES_KEY = {et: json_name(spec[0]) for et, spec in ATTRIBUTES.items()}


# The int64 fast path: a short string of decimal digits, which int() takes as is (as protobuf's
# Python parser does, any Unicode decimal digit counts); anything else goes to x_int64.
_FAST_INT = "v.__class__ is str and len(v) < 19 and v.isdecimal()"
_RARE_NAMES = ("worker_may_ignore", "user_metadata", "links", "principal", "event_group_markers")


def _envelope_source(et: EventType) -> str:
    """One envelope decoder: everything after eventId and eventType, for one event type."""
    i = int(et)
    cls = EVENT_CLASSES[et]
    key = _ATTRIBUTES_KEY[et]
    values = {
        "originator_id": "oid",
        "originator_version": "eid",
        "timestamp": "dt",
        "originator_topic": "RUN_TOPIC",
        "event_time": "t",
        "task_id": "tid",
        "version": "ver",
        "worker_may_ignore": "rare[0]",
        "user_metadata": "rare[1]",
        "links": "rare[2]",
        "principal": "rare[3]",
        "event_group_markers": "rare[4]",
        "unknown_fields": "u",
        "attributes": "a",
    }
    names = [f.name for f in dataclasses.fields(cls)]
    if issubclass(cls, HistoryStarted) != ("originator_topic" in names):
        raise AssertionError(f"{cls.__name__}: unexpected event fields {names}")
    for name in _other_defaults(cls):
        values[name] = f"DEF{i}_{name}"
    common = dict(zip(_RARE_NAMES, ("False", "None", "()", "None", "()"), strict=True))
    common_sets = "\n".join(
        f"        set_attr(o, {name!r}, {common.get(name, values[name])})" for name in names
    )
    rare_sets = "\n".join(f"        set_attr(o, {name!r}, {values[name]})" for name in names)
    return f"""
def ev{i}(obj, oid, eid):
    if COMMON{i}.issuperset(obj):
        u = None
        rare = None
    else:
        rare = True
        if KK{i}.issuperset(obj): u = None
        else: obj, u = extra(obj, KK{i}, AA{i})
    g = obj.get
    k = 'eventTime'
    try:
        v = g('eventTime')
        if v is None:
            t = None
            dt = EPOCH
        elif (v.__class__ is str and len(v) == 30 and v[19] == '.' and v[29] == 'Z'
              and (f := v[20:29]).isdecimal() and (h := TSP.get(v[:19])) is not None):
            n = int(f)
            t = new(TST)
            t.seconds = h[0]
            t.nanos = n
            t.__class__ = Timestamp
            dt = datetime(*h[1], n // 1000, UTC)
        else:
            t, dt = x_event_time(v)
        k = 'version'
        v = g(k)
        ver = 0 if v is None else int(v) if {_FAST_INT} else x_int64(v)
        k = 'taskId'
        v = g(k)
        tid = 0 if v is None else int(v) if {_FAST_INT} else x_int64(v)
        if rare is not None:
            k = None
            rare = rare_fields(obj)
        k = {key!r}
        v = g(k)
        if v is None: raise BadValue('required field is missing')
        a = AS{i}(v)
    except BadValue as e:
        if k is not None: e.segs.append('.' + k)
        e.event_id = eid
        raise
    except ERRORS as e:
        b = BadValue(f'{{type(e).__name__}}: {{e}}', None if k is None else '.' + k)
        b.event_id = eid
        raise b from None
    o = new(EC{i})
    if rare is None:
{common_sets}
    else:
{rare_sets}
    return o
"""


_FRONT = f"""
def front(obj, oid):
    if obj.__class__ is not dict: obj = x_object(obj)
    g = obj.get
    eid = None
    k = 'eventId'
    try:
        v = g('eventId')
        if v is None:
            v = g('event_id')
            if v is None: raise BadValue('required field is missing')
        eid = int(v) if {_FAST_INT} else x_int64(v)
        k = 'eventType'
        v = g('eventType')
        if v is None: v = g('event_type')
        f = DISPATCH.get(v) if v.__class__ is str else None
    except BadValue as e:
        e.segs.append('.' + k)
        e.event_id = eid
        raise
    if f is not None: return f(obj, oid, eid)
    return other(obj, oid, eid, v)
"""


_DECODED_FIELDS = frozenset(
    (
        "originator_id",
        "originator_version",
        "timestamp",
        "originator_topic",
        "event_time",
        "task_id",
        "version",
        "worker_may_ignore",
        "user_metadata",
        "links",
        "principal",
        "event_group_markers",
        "unknown_fields",
        "attributes",
        "raw_type",
        "attributes_key",
    )
)


def _other_defaults(cls: type) -> dict[str, Any]:
    """Event fields that JSON does not carry (e.g. `run_key`): their dataclass defaults."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in _DECODED_FIELDS:
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            raise AssertionError(f"{cls.__name__}.{f.name} has no default and no JSON source")
    return out


@cache
def _envelope_code() -> Any:
    """The compiled envelope decoders of every event type (compiled once per process)."""
    source = _FRONT + "".join(_envelope_source(et) for et in ATTRIBUTES)
    return compile(source, "<runhistory.adapters.codec envelope>", "exec")


class EventCodec:
    """Decode and encode Temporal history events and any generated message in proto3 JSON.

    `strict` (the default) refuses an event type this API version does not know unless the
    event says `workerMayIgnore: true`; lenient mode keeps every unknown event as an opaque
    `UnknownEvent` that encodes back to its input. Every wrong input raises `MalformedHistory`
    with the JSON path of the offending value."""

    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict
        self._converter = converter = _make_converter(self)
        self._structure: dict[type, Fn] = {cls: converter.get_structure_hook(cls) for cls in FIELDS}
        self._unstructure: dict[type, Fn] = {
            cls: converter.get_unstructure_hook(cls) for cls in FIELDS
        }
        ns: dict[str, Any] = {
            "new": _new,
            "set_attr": _set_attr,
            "extra": extra_keys,
            "BadValue": BadValue,
            "ERRORS": CONVERSION_ERRORS,
            "EPOCH": _EPOCH,
            "TSP": TS_PREFIX,
            "TST": TS_TWIN,
            "Timestamp": Timestamp,
            "datetime": datetime,
            "UTC": UTC,
            "x_event_time": x_event_time,
            "x_int64": x_int64,
            "x_object": x_object,
            "rare_fields": self._rare_fields,
            "other": self._decode_other,
            "RUN_TOPIC": RUN_TOPIC,
            "DISPATCH": {},
        }
        for et, (field_name, _number, attributes_cls) in ATTRIBUTES.items():
            i = int(et)
            key = _ATTRIBUTES_KEY[et]
            ns[f"KK{i}"] = _ENVELOPE_KEYS | {key}
            ns[f"COMMON{i}"] = (_ENVELOPE_KEYS - _RARE_KEYS) | {key}
            ns[f"AA{i}"] = {**_ENVELOPE_ALIASES, field_name: key}
            ns[f"AS{i}"] = self._structure[attributes_cls]
            ns[f"EC{i}"] = EVENT_CLASSES[et]
            for name, default in _other_defaults(EVENT_CLASSES[et]).items():
                ns[f"DEF{i}_{name}"] = default
        exec(_envelope_code(), ns)
        self._envelope: dict[EventType, Fn] = {et: ns[f"ev{int(et)}"] for et in ATTRIBUTES}
        # Every accepted spelling of a known type -> its decoder: one lookup per event.
        for spelling, member in _EVENT_TYPE_NAMES.items():
            if member in self._envelope:
                ns["DISPATCH"][spelling] = self._envelope[EventType(member)]
        self._front: Fn = ns["front"]
        self._encoders: dict[type, tuple[str, str, Fn]] = {
            EVENT_CLASSES[et]: (
                _TYPE_NAME[et],
                _ATTRIBUTES_KEY[et],
                self._unstructure[ATTRIBUTES[et][2]],
            )
            for et in ATTRIBUTES
        }

    # --- messages ---------------------------------------------------------------------------

    def decode_message(self, cls: type[T], obj: Any, path: str = "$") -> T:
        """Any generated message class (or Timestamp, Duration, a proto enum) from JSON."""
        if cls not in FIELDS and cls not in (Timestamp, Duration) and not _is_proto_enum(cls):
            raise TypeError(f"{cls!r} is not a generated Temporal message class")
        try:
            result: T = self._converter.structure(obj, cls)
        except BadValue as e:
            raise MalformedHistory(e.reason, path=e.path(path)) from None
        except CONVERSION_ERRORS as e:
            raise MalformedHistory(f"{type(e).__name__}: {e}", path=path) from None
        return result

    def encode_message(self, msg: object) -> dict[str, Any]:
        """Canonical proto3 JSON of a generated message instance."""
        hook = self._unstructure.get(type(msg))
        if hook is None:
            raise TypeError(f"{type(msg).__name__} is not a generated Temporal message class")
        result: dict[str, Any] = hook(msg)
        return result

    # --- events -----------------------------------------------------------------------------

    def decode(self, obj: Any, *, originator_id: UUID, index: int | None = None) -> HistoryEvent:
        """One history event. `index` is its position in `events`, used in error paths."""
        if originator_id.__class__ is not UUID and not isinstance(originator_id, UUID):
            raise TypeError(f"originator_id must be a UUID, got {type(originator_id).__name__}")
        try:
            event: HistoryEvent = self._front(obj, originator_id)
        except BadValue as e:
            base = "$" if index is None else f"$.events[{index}]"
            raise MalformedHistory(e.reason, path=e.path(base), event_id=e.event_id) from None
        except CONVERSION_ERRORS as e:  # e.g. RecursionError on absurdly deep unknown JSON
            base = "$" if index is None else f"$.events[{index}]"
            raise MalformedHistory(f"{type(e).__name__}: {e}", path=base) from None
        return event

    def _decode_other(
        self, obj: dict[str, Any], originator_id: UUID, event_id: int, raw_type: Any
    ) -> HistoryEvent:
        """An event whose type is not spelled as a known name: a number, or a type this API
        version does not know (kept as an `UnknownEvent`, see `strict`)."""
        try:
            event_type = _event_type(raw_type)
        except BadValue as e:
            e.segs.append(".eventType")
            e.event_id = event_id
            raise
        envelope = self._envelope.get(event_type) if event_type is not None else None
        if envelope is None:
            return self._decode_unknown(obj, originator_id, event_id, raw_type)
        event: HistoryEvent = envelope(obj, originator_id, event_id)
        return event

    def _rare_fields(self, obj: dict[str, Any]) -> tuple[Any, ...]:
        """workerMayIgnore, userMetadata, links, principal, eventGroupMarkers."""
        s = self._structure
        out: list[Any] = []
        for key, default, convert in (
            ("workerMayIgnore", False, x_bool),
            ("userMetadata", None, s[m.UserMetadata]),
            ("links", (), lambda v: x_repeated(s[m.Link], v)),
            ("principal", None, s[m.Principal]),
            ("eventGroupMarkers", (), lambda v: x_repeated(s[m.EventGroupMarker], v)),
        ):
            value = obj.get(key)
            try:
                out.append(default if value is None else convert(value))
            except BadValue as e:
                e.segs.append("." + key)
                raise
        return tuple(out)

    def _decode_unknown(
        self, obj: dict[str, Any], originator_id: UUID, event_id: int, raw: Any
    ) -> UnknownEvent:
        """An event type this API version does not know (or UNSPECIFIED), kept opaque."""
        raw_type = "" if raw is None else raw if isinstance(raw, str) else str(raw)
        key: str | None = None
        try:
            if _ENVELOPE_KEYS.issuperset(obj):
                known, rest = obj, None
            else:
                known, rest = extra_keys(obj, _ENVELOPE_KEYS, _ENVELOPE_ALIASES)
            rare = self._rare_fields(known)
            if self.strict and not rare[0]:
                raise UnknownEventType(event_id, raw_type)
            key = "eventTime"
            value = known.get(key)
            event_time, timestamp = (None, _EPOCH) if value is None else x_event_time(value)
            key = "version"
            value = known.get(key)
            version = 0 if value is None else x_int64(value)
            key = "taskId"
            value = known.get(key)
            task_id = 0 if value is None else x_int64(value)
        except BadValue as e:
            if key is not None:
                e.segs.append("." + key)
            e.event_id = event_id
            raise
        candidates = [k for k in rest or () if k.endswith("EventAttributes")]
        attributes_key = candidates[0] if len(candidates) == 1 else None
        attributes = None
        if rest is not None and attributes_key is not None:
            attributes = rest.pop(attributes_key)
        fields = {
            "originator_id": originator_id,
            "originator_version": event_id,
            "timestamp": timestamp,
            "event_time": event_time,
            "task_id": task_id,
            "version": version,
            "worker_may_ignore": rare[0],
            "user_metadata": rare[1],
            "links": rare[2],
            "principal": rare[3],
            "event_group_markers": rare[4],
            "unknown_fields": rest or None,
            "attributes": attributes,
            "raw_type": raw_type,
            "attributes_key": attributes_key,
            **_other_defaults(UnknownEvent),
        }
        event = _new(UnknownEvent)
        for name, value in fields.items():
            _set_attr(event, name, value)
        return event

    def encode(self, event: HistoryEvent) -> dict[str, Any]:
        """Canonical proto3 JSON of one event, keys in proto field-number order."""
        encoder = self._encoders.get(type(event))
        if encoder is None:
            if isinstance(event, UnknownEvent):
                return self._encode_unknown(event)
            encoder = self._encoders[EVENT_CLASSES[event.event_type]]
        type_name, attributes_key, unstructure = encoder
        out: dict[str, Any] = {"eventId": str(event.originator_version)}
        value: Any = event.event_time
        if value is not None:
            out["eventTime"] = f_timestamp(value)
        out["eventType"] = type_name
        value = event.version
        if value:
            out["version"] = str(value)
        value = event.task_id
        if value:
            out["taskId"] = str(value)
        out[attributes_key] = unstructure(event.attributes)
        if (
            event.worker_may_ignore
            or event.user_metadata is not None
            or event.links
            or event.principal is not None
            or event.event_group_markers
            or event.unknown_fields
        ):
            self._encode_tail(event, out)
        return out

    def _encode_tail(self, event: HistoryEvent, out: dict[str, Any]) -> None:
        """The envelope fields after the attributes (proto numbers 300+), then unknown keys."""
        if event.worker_may_ignore:
            out["workerMayIgnore"] = True
        u = self._unstructure
        if event.user_metadata is not None:
            out["userMetadata"] = u[m.UserMetadata](event.user_metadata)
        if event.links:
            out["links"] = [u[m.Link](x) for x in event.links]
        if event.principal is not None:
            out["principal"] = u[m.Principal](event.principal)
        if event.event_group_markers:
            markers = event.event_group_markers
            out["eventGroupMarkers"] = [u[m.EventGroupMarker](x) for x in markers]
        if event.unknown_fields:
            out.update(copy_json(event.unknown_fields))

    def _encode_unknown(self, event: UnknownEvent) -> dict[str, Any]:
        out: dict[str, Any] = {"eventId": str(event.originator_version)}
        if event.event_time is not None:
            out["eventTime"] = f_timestamp(event.event_time)
        raw = event.raw_type
        if raw:
            # A type read as a number is written as one (proto3 JSON allows enum numbers).
            digits = raw[1:] if raw.startswith("-") else raw
            out["eventType"] = int(raw) if digits.isdigit() and digits.isascii() else raw
        if event.version:
            out["version"] = str(event.version)
        if event.task_id:
            out["taskId"] = str(event.task_id)
        if event.attributes_key is not None:
            out[event.attributes_key] = copy_json(event.attributes)
        self._encode_tail(event, out)
        return out


def _make_converter(codec: EventCodec) -> cattrs.Converter:
    """A private converter holding every hook; nothing is registered globally."""
    hooks = compile_hooks()
    converter = cattrs.Converter()
    for cls, structure in hooks.structure.items():
        converter.register_structure_hook(cls, structure)
    for cls, unstructure in hooks.unstructure.items():
        converter.register_unstructure_hook(cls, unstructure)
    converter.register_structure_hook(Timestamp, lambda v, _t: x_event_time(v)[0])
    converter.register_structure_hook(Duration, lambda v, _t: x_duration(v))
    converter.register_unstructure_hook(Timestamp, f_timestamp)
    converter.register_unstructure_hook(Duration, f_duration)
    for enum_cls in PROTO_PREFIX:
        converter.register_structure_hook(enum_cls, lambda v, t: x_enum(t, v))
        converter.register_unstructure_hook(enum_cls, _enum_name)
    converter.register_unstructure_hook_func(_is_event_class, codec.encode)
    return converter


def _event_type(raw: Any) -> EventType | None:
    """The EventType of a non-canonical spelling, or None if this API version lacks it (or it
    is UNSPECIFIED): such events are decoded as `UnknownEvent`."""
    if raw is None:
        return None
    if not isinstance(raw, str | int) or raw is True or raw is False:
        raise BadValue(f"expected an event type name, got {type(raw).__name__}")
    try:
        member = x_enum(EventType, raw)
    except BadValue:
        return None
    return EventType(member) if member else None


def _is_proto_enum(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, enum.IntEnum) and t in PROTO_PREFIX


def _is_event_class(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, HistoryEvent)


def _enum_name(member: enum.IntEnum) -> str:
    return enum_names(type(member))[member]

"""`history_size_bytes`: the server's `historySizeBytes`, computed exactly from the events.

The server adds the size of every history batch blob it persists, and a batch is a serialized
`History{events}`; so each durable event costs `1 + varint_len(size) + size`, where `size` is the
proto3 binary size of its `HistoryEvent` (semantics §5.1). Events with `task_id == 0` (the
transient/speculative tail, I13) are not persisted and cost nothing.

The proto3 size is computed from `runhistory.domain.schema`: field numbers and kinds give each
field's tag and wire type. The per-class size functions are generated once from the schema
(a plan per message class) and cached, which keeps a 50,000-event history well under a second.
Encoding rules follow the Go protobuf runtime the server uses: defaults of implicit-presence
fields are omitted, a set message (even empty) costs its tag and a zero length, repeated numbers
are packed, map entries always carry key (1) and value (2), negative int32/int64/enum values take
ten bytes.

Custom search attributes. A server with SQL visibility (the dev server, self-hosted SQL stores)
persists a custom search attribute under its database field name (`Keyword01`, `Int02`, …: the
value's type name plus two digits) and replaces it by its alias, and adds the `type` metadata
to null (removal) values, only when history is read. With `search_attributes="sql"` (the
default) custom attributes are sized as stored; `"as-read"` sizes them as they appear in the
events (right for Elasticsearch visibility, where names are not aliased).

Server checkpoints: a WORKFLOW_TASK_STARTED that was written alone records the server's own
running total; `history_size_bytes` uses the last one (checked against the one before) so that
only the events after it need sizing (see its docstring).

Limits: fields this API version does not know (kept as raw JSON in `unknown_fields`) and opaque
unknown event types cannot be sized, so such events are under-counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any, Literal

from runhistory.domain.enums import EventType
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.events import EVENT_CLASSES
from runhistory.domain.fieldspec import FieldSpec, Label
from runhistory.domain.messages import Payload, SearchAttributes
from runhistory.domain.run import WorkflowRun
from runhistory.domain.schema import ATTRIBUTES, ENVELOPE, FIELDS
from runhistory.projections._common import E, split_tail

__all__ = [
    "SearchAttributeStorage",
    "checkpoints",
    "event_size",
    "history_size_bytes",
    "varint_len",
]

SearchAttributeStorage = Literal["sql", "as-read"]
_Memo = dict[int, int]  # id(message) -> size, for one call: the messages are alive throughout
_Sizer = Callable[[Any, _Memo], int]
_PREDEFINED = frozenset({"BinaryChecksums", "BuildIds", "BatcherNamespace", "BatcherUser"})

_INTS = frozenset({"int32", "int64", "enum", "uint32", "uint64"})
_ZIGZAG = frozenset({"sint32", "sint64"})
_FIXED = {"fixed32": 4, "sfixed32": 4, "float": 4, "fixed64": 8, "sfixed64": 8, "double": 8}
_WIRE = {"varint": 0, "i64": 1, "len": 2, "i32": 5}


def varint_len(value: int) -> int:
    """Bytes of a protobuf varint; a negative int32/int64 is sign-extended to 10 bytes."""
    if value < 0:
        return 10
    return max(1, (value.bit_length() + 6) // 7)


def _zigzag_len(value: int) -> int:
    return varint_len((value << 1) ^ (value >> 63))


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _delimited(size: int) -> int:
    """A length-delimited payload of `size` bytes: its length prefix plus itself."""
    return size + (1 if size < 128 else varint_len(size))


def _signed(value: float) -> bool:
    return value != 0.0 or math.copysign(1.0, value) < 0


def _wire(kind: str) -> int:
    if kind in _INTS or kind in _ZIGZAG or kind == "bool":
        return _WIRE["varint"]
    if kind in _FIXED:
        return _WIRE["i32"] if _FIXED[kind] == 4 else _WIRE["i64"]
    return _WIRE["len"]


def _tag_len(number: int, wire: int) -> int:
    return varint_len((number << 3) | wire)


_PREFIX = "s += 1 if s < 128 else (s.bit_length() + 6) // 7"


def _value(kind: str, var: str, function: str) -> list[str]:
    """Statements setting `s` to the encoded size, without tag, of the value in `var` (for
    length-delimited kinds including the length prefix). `function` sizes a message target."""
    if kind in _INTS:
        return [f"s = 10 if {var} < 0 else ({var}.bit_length() + 6) // 7 or 1"]
    if kind in _ZIGZAG:
        return [f"s = _zz({var})"]
    if kind == "bool":
        return ["s = 1"]
    if kind in _FIXED:
        return [f"s = {_FIXED[kind]}"]
    if kind == "string":
        return [f"s = len({var}) if {var}.isascii() else len({var}.encode())", _PREFIX]
    if kind == "bytes":
        return [f"s = len({var})", _PREFIX]
    if kind in ("timestamp", "duration"):
        return [
            f"w = {var}.seconds",
            "s = (11 if w < 0 else 1 + (w.bit_length() + 6) // 7) if w else 0",
            f"w = {var}.nanos",
            "if w:",
            "    s += 11 if w < 0 else 1 + (w.bit_length() + 6) // 7",
            "s += 1",
        ]
    if kind == "message":  # messages are often shared between events: memoised per call
        return [  # sub-messages are often shared between events: sized once per call
            f"s = M.get(id({var}))",
            "if s is None:",
            f"    s = {function}({var}, M)",
            f"    {_PREFIX}",
            f"    M[id({var})] = s",
        ]
    raise ValueError(f"no size rule for proto kind {kind!r}")


def _present(kind: str, var: str, presence: bool) -> str:
    """The test for "this field is encoded": set (explicit presence) or not the default."""
    if presence or kind in ("message", "timestamp", "duration"):
        return f"{var} is not None"
    if kind in ("float", "double"):
        return f"_sg({var})"  # -0.0 is not the default
    return var


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def _field_lines(spec: FieldSpec, obj: str, names: dict[type, str], acc: str = "n") -> list[str]:
    wire = _wire(spec.kind)
    function = names.get(spec.target, "_S[x.__class__]") if spec.target else ""
    get = f"v = {obj}.{spec.name}"
    if spec.label is Label.MAP:
        tag = _tag_len(spec.number, _WIRE["len"])
        return [
            get,
            "for k, x in v.items():",
            "    e = len(k) if k.isascii() else len(k.encode())",
            "    e += 2 if e < 128 else 1 + (e.bit_length() + 6) // 7",
            *_indent(_value(spec.kind, "x", function)),
            "    e += 1 + s",
            f"    {acc} += {tag} + e + (1 if e < 128 else (e.bit_length() + 6) // 7)",
        ]
    if spec.label is Label.REPEATED:
        if wire == _WIRE["len"]:
            tag = _tag_len(spec.number, wire)
            return [
                get,
                "for x in v:",
                *_indent(_value(spec.kind, "x", function)),
                f"    {acc} += {tag} + s",
            ]
        tag = _tag_len(spec.number, _WIRE["len"])
        each = f"sum({_value(spec.kind, 'x', function)[0][4:]} for x in v)"
        if spec.kind in _FIXED or spec.kind == "bool":
            each = f"{_FIXED.get(spec.kind, 1)} * len(v)"
        elif spec.kind in _INTS:
            each = "sum(10 if x < 0 else (x.bit_length() + 6) // 7 or 1 for x in v)"
        return [get, "if v:", f"    s = {each}", f"    {_PREFIX}", f"    {acc} += {tag} + s"]
    tag = _tag_len(spec.number, wire)
    function = function.replace("x.__class__", "v.__class__")
    if spec.kind in _INTS and not spec.presence:  # the hottest case, in one statement
        return [
            get,
            "if v:",
            f"    {acc} += {tag + 10} if v < 0 else {tag} + (v.bit_length() + 6) // 7",
        ]
    return [
        get,
        f"if {_present(spec.kind, 'v', spec.presence)}:",
        *_indent(_value(spec.kind, "v", function)),
        f"    {acc} += {tag} + s",
    ]


def _function(name: str, specs: Iterable[FieldSpec], names: dict[type, str]) -> str:
    body = ["n = 0"]
    for spec in specs:
        body.extend(_field_lines(spec, "o", names))
    body.append("return n")
    return f"def {name}(o, M):\n" + "".join(f"    {line}\n" for line in body)


def _custom(name: str) -> bool:
    return not name.startswith("Temporal") and name not in _PREDEFINED


def _stored_search_attributes(payload_size: _Sizer) -> _Sizer:
    """SearchAttributes sized as a SQL-visibility server stores them (see the module doc)."""

    def size(o: SearchAttributes, memo: _Memo) -> int:
        n = 0
        for name, payload in o.indexed_fields.items():
            key = _utf8_len(name)
            value = payload_size(payload, memo)
            kind = payload.metadata.get("type") if isinstance(payload, Payload) else None
            if kind and _custom(name):
                key = len(kind) + 2  # <Type>NN
                if payload.metadata.get("encoding") == b"binary/null":
                    value -= 1 + _delimited(1 + _delimited(4) + 1 + _delimited(len(kind)))
            n += 1 + _delimited(1 + _delimited(key) + 1 + _delimited(value))
        return n

    return size


class _Plans:
    """Size functions generated from the schema, one per message class and one per event class,
    each compiled the first time it is needed."""

    def __init__(self, search_attributes: SearchAttributeStorage) -> None:
        self.namespace: dict[str, Any] = {"_zz": _zigzag_len, "_sg": _signed, "_vl": varint_len}
        self.names = {cls: f"_m{number}" for number, cls in enumerate(FIELDS)}
        for cls, name in self.names.items():
            self.namespace[name] = self._message_stub(cls, name)
        if search_attributes == "sql":
            payload = self.names[Payload]
            self.namespace[self.names[SearchAttributes]] = _stored_search_attributes(
                lambda o, memo: self.namespace[payload](o, memo)
            )
        self.namespace["_S"] = {cls: self.namespace[n] for cls, n in self.names.items()}
        self.envelope = [
            "w = o.originator_version",
            "n = 1 + (w.bit_length() + 6) // 7 if w else 0",
        ]
        for spec in ENVELOPE:
            if spec.name not in ("event_id", "event_type"):  # event_id is the aggregate version
                self.envelope.extend(_field_lines(spec, "o", self.names))
        self.by_class: dict[type, _Sizer] = {
            EVENT_CLASSES[event_type]: self._event_stub(event_type) for event_type in ATTRIBUTES
        }
        generic = [*self.envelope, "v = o.event_type", "if v:", "    n += 1 + _vl(v)", "return n"]
        self.generic: _Sizer = self._compile("_event", generic)

    def _compile(self, name: str, lines: list[str]) -> _Sizer:
        source = f"def {name}(o, M):\n" + "".join(f"    {line}\n" for line in lines)
        exec(source, self.namespace)  # generated from the schema only; no outside input
        function: _Sizer = self.namespace[name]
        return function

    def _message_stub(self, cls: type, name: str) -> _Sizer:
        def stub(o: Any, memo: _Memo) -> int:
            lines = ["n = 0"]
            for spec in FIELDS[cls]:
                lines.extend(_field_lines(spec, "o", self.names))
            lines.append("return n")
            return self._compile(name, lines)(o, memo)

        return stub

    def _event_stub(self, event_type: EventType) -> _Sizer:
        _name, number, cls = ATTRIBUTES[event_type]
        event_class = EVENT_CLASSES[event_type]

        def stub(o: Any, memo: _Memo) -> int:
            fixed = _tag_len(3, 0) + varint_len(event_type) + _tag_len(number, _WIRE["len"])
            lines = [*self.envelope, "t = 0", "a = o.attributes"]
            for spec in FIELDS[cls]:
                lines.extend(_field_lines(spec, "a", self.names, acc="t"))
            lines.append(f"return n + {fixed} + t + (1 if t < 128 else (t.bit_length() + 6) // 7)")
            function = self._compile(f"_e{int(event_type)}", lines)
            self.by_class[event_class] = function
            return function(o, memo)

        return stub


@cache
def _plans(search_attributes: SearchAttributeStorage) -> _Plans:
    return _Plans(search_attributes)


def event_size(event: HistoryEvent, *, search_attributes: SearchAttributeStorage = "sql") -> int:
    """The proto3 binary size of one `HistoryEvent` (without its framing in a batch)."""
    plans = _plans(search_attributes)
    return plans.by_class.get(event.__class__, plans.generic)(event, {})


def history_size_bytes(
    run: WorkflowRun,
    *,
    search_attributes: SearchAttributeStorage = "sql",
    use_checkpoints: bool = True,
) -> int:
    """Σ over durable events of 1 + varint_len(size) + size, as the server counts it (§5.1).

    A WORKFLOW_TASK_STARTED written in a transaction of its own carries the server's running
    total (`history_size_bytes`) of every event before it. With `use_checkpoints`, the last such
    total is used and only the events from there on are sized, once the span between the last
    two totals has been sized to exactly their difference (else everything is sized)."""
    events = split_tail(run.history)[0]
    plans = _plans(search_attributes)
    if use_checkpoints:
        marks = checkpoints(events)
        if len(marks) == 2:
            (last, last_total), (prev, prev_total) = marks
            if _sum(events[prev:last], plans) == last_total - prev_total:
                return last_total + _sum(events[last:], plans)
    return _sum(events, plans)


def _sum(events: Sequence[HistoryEvent], plans: _Plans) -> int:
    get, generic = plans.by_class.get, plans.generic
    total = 0
    memo: _Memo = {}
    for event in events:
        size = get(event.__class__, generic)(event, memo)
        total += size + (2 if size < 128 else 1 + varint_len(size))
    return total


def checkpoints(events: Sequence[HistoryEvent]) -> list[tuple[int, int]]:
    """The last two (index, server running total) of WORKFLOW_TASK_STARTED events that were
    their transaction's only event (Rule T), latest first."""
    marks: list[tuple[int, int]] = []
    index = len(events) - 1
    while index > 0 and len(marks) < 2:
        event = events[index]
        if event.event_type == E.WORKFLOW_TASK_STARTED and event.task_id:
            total = getattr(event.attributes, "history_size_bytes", 0)
            alone = events[index - 1].task_id + 1 != event.task_id and (
                index + 1 == len(events) or events[index + 1].task_id != event.task_id + 1
            )
            if alone and total > 0:
                marks.append((index, total))
        index -= 1
    return marks

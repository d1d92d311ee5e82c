"""A small proto3-JSON encoder for the generated messages, driven by `schema.FIELDS`.

`describe` copies message-valued fields (task queue, retry policy, memo, payloads, …) out of
events; this writes them the way protobuf's JSON mapping does, without importing the adapters:
lowerCamel names, int64 as strings, bytes as base64, enums by full proto name, timestamps and
durations as text, defaults omitted (a set but empty message is `{}`), and fields this API
version does not know written back as they were read. Callers may pass their own encoder.
"""

from __future__ import annotations

import base64
import enum
import math
from collections.abc import Callable, Mapping
from typing import Any

from runhistory.domain.enums import PROTO_PREFIX
from runhistory.domain.fieldspec import FieldSpec, Label
from runhistory.domain.schema import FIELDS
from runhistory.domain.timeval import Duration, Timestamp

__all__ = ["MessageEncoder", "encode_enum", "encode_message", "json_name"]

MessageEncoder = Callable[[object], Any]
"""Turns one generated message (or Timestamp/Duration) into its proto3 JSON value."""

_AS_STRING = frozenset({"int64", "uint64", "sint64", "fixed64", "sfixed64"})
_Plan = tuple[tuple[str, str, Callable[[Any], Any], bool, Label], ...]


def json_name(name: str) -> str:
    """protobuf's default JSON name: lowerCamel of the snake_case field name."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def encode_enum(value: enum.IntEnum) -> str:
    """`WorkflowExecutionStatus.COMPLETED` style members as their full proto name."""
    return PROTO_PREFIX.get(type(value), "") + value.name


def _float(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _scalar(spec: FieldSpec) -> Callable[[Any], Any]:
    kind = spec.kind
    if kind in _AS_STRING:
        return str
    if kind == "enum":
        return lambda v: encode_enum(v) if isinstance(v, enum.IntEnum) else int(v)
    if kind == "bytes":
        return lambda v: base64.b64encode(v).decode("ascii")
    if kind in ("float", "double"):
        return _float
    if kind in ("timestamp", "duration"):
        return str
    if kind == "message":
        return encode_message
    return lambda v: v  # string, bool, int32, uint32, sint32, fixed32


_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    """How to write each field of a message class, built once per class."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = tuple(
            (spec.name, json_name(spec.name), _scalar(spec), spec.presence, spec.label)
            for spec in FIELDS[cls]
        )
    return plan


def encode_message(message: object) -> Any:
    """The proto3 JSON value of a generated message, Timestamp or Duration."""
    if isinstance(message, (Timestamp, Duration)):
        return str(message)
    out: dict[str, Any] = {}
    for name, key, convert, presence, label in _plan(type(message)):
        value = getattr(message, name)
        if label is Label.MAP:
            if value:
                out[key] = {k: convert(v) for k, v in value.items()}
        elif label is Label.REPEATED:
            if value:
                out[key] = [convert(v) for v in value]
        elif value is None:
            continue
        elif presence or value or isinstance(value, (Timestamp, Duration)) or _is_message(value):
            out[key] = convert(value)
        elif isinstance(value, float) and math.copysign(1.0, value) < 0:
            out[key] = convert(value)  # -0.0 is not the default
    unknown = getattr(message, "unknown_fields", None)
    if isinstance(unknown, Mapping):
        out.update(unknown)
    return out


def _is_message(value: object) -> bool:
    return type(value) in FIELDS

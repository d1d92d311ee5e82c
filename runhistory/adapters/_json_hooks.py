"""Proto3 JSON conversion of the generated message classes: scalar converters and hook generator.

`compile_hooks()` turns `schema.FIELDS` into one structure and one unstructure function per
message class, written as straight-line Python source and compiled once per process. Each field
is read with one `dict.get`, checked with an inline fast path for the usual JSON spelling
(`"123"` for an int64, a cached `"10s"` for a duration, ...) and otherwise handed to a slow,
thorough converter (`x_*`). Why generated code: a frozen dataclass `__init__` and per-field
function calls were most of the cost on a 50,000-event history, so instances are filled as a
"mutable twin" with plain slot stores and then re-classed (see `mutable_twin`), and small leaf
messages that repeat across a history (task queue, retry policy, ...) are decoded once and
shared, keyed by their exact JSON text.

Errors are raised as `BadValue`, whose `segs` collect the JSON path innermost-first as the
exception travels up through the generated functions (a try block costs nothing on Python 3.11
until it catches); `EventCodec` turns them into `MalformedHistory`.
"""

from __future__ import annotations

import binascii
import dataclasses
import enum
import keyword
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

import orjson

from runhistory.domain.enums import PROTO_PREFIX
from runhistory.domain.fieldspec import FieldSpec, Label
from runhistory.domain.frozen import EMPTY_MAP
from runhistory.domain.schema import FIELDS
from runhistory.domain.timeval import Duration, Timestamp, TimeValueError

__all__ = [
    "CONVERSION_ERRORS",
    "TS_PREFIX",
    "TS_TWIN",
    "BadValue",
    "Hooks",
    "compile_hooks",
    "copy_json",
    "enum_names",
    "enum_table",
    "extra_keys",
    "f_duration",
    "f_timestamp",
    "json_name",
    "key_segment",
    "mutable_twin",
    "x_bool",
    "x_duration",
    "x_enum",
    "x_event_time",
    "x_int64",
    "x_object",
    "x_repeated",
]

Fn = Callable[..., Any]

_new = object.__new__
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CACHE_LIMIT = 8192
_MESSAGE_CACHE_LIMIT = 2048
# Cache keys are orjson's text of the input object; objects that are not plain JSON values
# raise instead of being written like one (a str subclass, a dataclass, a datetime).
_DUMPS_OPTION = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)
# Exceptions a converter may leak on hostile input; the generated code maps them to BadValue.
CONVERSION_ERRORS = (
    TypeError,
    ValueError,
    AttributeError,
    KeyError,
    IndexError,
    OverflowError,
    RecursionError,
)


class BadValue(Exception):
    """Internal: a JSON value that does not fit its field. `segs` is the path, innermost first."""

    def __init__(self, reason: str, seg: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segs: list[str] = [] if seg is None else [seg]
        self.event_id: int | None = None

    def path(self, base: str) -> str:
        return base + "".join(reversed(self.segs))


def describe(value: object) -> str:
    """The JSON type of a value, for error messages."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def json_name(snake: str) -> str:
    """protobuf's json_name rule: drop each `_` and upper-case the character after it."""
    out: list[str] = []
    upper = False
    for ch in snake:
        if ch == "_":
            upper = True
        elif upper:
            out.append(ch.upper())
            upper = False
        else:
            out.append(ch)
    return "".join(out)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def key_segment(key: object) -> str:
    """A path segment for an object key: `.name`, or `["odd key"]` when it is not a name."""
    if isinstance(key, str) and _IDENT.match(key):
        return "." + key
    text = str(key).replace("\\", "\\\\").replace('"', '\\"')
    return f'["{text}"]'


def copy_json(value: Any) -> Any:
    """A deep copy of a raw JSON value, so kept unknown fields never alias the caller's data."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


# --- scalar converters: JSON value -> Python value, raising only BadValue -------------------

_INT = re.compile(r"-?\d+\Z")  # Unicode decimal digits, exactly what int() accepts
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_FLOAT_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_FLOAT32_MAX = 3.4028234663852886e38


def _x_int(value: Any, lo: int, hi: int, what: str) -> int:
    if value is True or value is False:
        raise BadValue(f"expected {what}, got boolean")
    if isinstance(value, int):
        number = int(value)
    elif isinstance(value, float):
        if not value.is_integer():
            raise BadValue(f"expected {what}, got {value!r}")
        number = int(value)
    elif isinstance(value, str):
        if not _INT.match(value):
            raise BadValue(f"expected {what}, got string {value[:40]!r}")
        number = int(value)
    else:
        raise BadValue(f"expected {what}, got {describe(value)}")
    if not lo <= number <= hi:
        raise BadValue(f"{what} out of range: {number}")
    return number


def x_int32(value: Any) -> int:
    if value.__class__ is int and -2147483648 <= value <= 2147483647:
        return int(value)
    return _x_int(value, -(2**31), 2**31 - 1, "an int32")


def x_uint32(value: Any) -> int:
    if value.__class__ is int and 0 <= value <= 4294967295:
        return int(value)
    return _x_int(value, 0, 2**32 - 1, "a uint32")


def x_int64(value: Any) -> int:
    if value.__class__ is str and len(value) < 19 and value.isdecimal():
        return int(value)
    return _x_int(value, -(2**63), 2**63 - 1, "an int64")


def x_uint64(value: Any) -> int:
    if value.__class__ is str and len(value) < 19 and value.isdecimal():
        return int(value)
    return _x_int(value, 0, 2**64 - 1, "a uint64")


def x_string(value: Any) -> str:
    if isinstance(value, str):
        return str(value)
    raise BadValue(f"expected a string, got {describe(value)}")


def x_bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise BadValue(f"expected true or false, got {describe(value)}")


def x_double(value: Any) -> float:
    if value.__class__ is float:
        return float(value)
    if value is True or value is False:
        raise BadValue("expected a number, got boolean")
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            raise BadValue("number out of range for a double") from None
    if isinstance(value, str):
        special = _FLOAT_NAMES.get(value)
        if special is not None:
            return special
        if _FLOAT.match(value):
            result = float(value)
            if not math.isinf(result):
                return result
    raise BadValue(f"expected a number, got {describe(value)}")


def x_float(value: Any) -> float:
    result = x_double(value)
    if math.isfinite(result) and abs(result) > _FLOAT32_MAX:
        raise BadValue(f"number out of range for a float: {result!r}")
    return result


_a2b = binascii.a2b_base64


def x_bytes(value: Any) -> bytes:
    """Standard or URL-safe base64, padded or not."""
    if value.__class__ is str:
        try:
            return _a2b(value, strict_mode=True)
        except (binascii.Error, ValueError):
            pass
    if not isinstance(value, str):
        raise BadValue(f"expected a base64 string, got {describe(value)}")
    text = value.replace("-", "+").replace("_", "/")
    pad = -len(text) % 4
    if pad == 3:
        raise BadValue(f"invalid base64 (bad length): {value[:40]!r}")
    try:
        return _a2b(text + "=" * pad, strict_mode=True)
    except (binascii.Error, ValueError):
        raise BadValue(f"invalid base64: {value[:40]!r}") from None


_BYTES_CACHE: dict[str, bytes] = {}


def x_bytes_cached(value: Any) -> bytes:
    """`x_bytes` through a small cache: for map values such as `Payload.metadata`, which
    repeat (`"anNvbi9wbGFpbg=="`) across a whole history."""
    hit = _BYTES_CACHE.get(value) if value.__class__ is str else None
    if hit is None:
        hit = x_bytes(value)
        if len(value) <= 64:
            if len(_BYTES_CACHE) >= _CACHE_LIMIT:
                _BYTES_CACHE.clear()
            _BYTES_CACHE[str(value)] = hit
    return hit


_DURATION_CACHE: dict[str, Duration] = {}


def x_duration(value: Any) -> Duration:
    hit = _DURATION_CACHE.get(value) if value.__class__ is str else None
    if hit is not None:
        return hit
    if not isinstance(value, str):
        raise BadValue(f'expected a duration string like "1.5s", got {describe(value)}')
    try:
        result = Duration.parse(value)
    except TimeValueError as e:
        raise BadValue(str(e)) from None
    if len(_DURATION_CACHE) >= _CACHE_LIMIT:
        _DURATION_CACHE.clear()
    _DURATION_CACHE[str(value)] = result
    return result


def mutable_twin(cls: type) -> type:
    """A plain class with the same slots as the frozen slotted dataclass `cls`. An instance is
    filled with plain (fast) attribute stores and then becomes a `cls` by `__class__`
    assignment, which Python allows between classes of identical slot layout. That is
    twice as fast as the frozen `__init__` and gives an instance equal to what it builds."""
    twin = type(f"_Mutable{cls.__name__}", (), {"__slots__": cls.__slots__})  # type: ignore[attr-defined]
    probe: Any = _new(twin)
    probe.__class__ = cls  # fails loudly at import if the layouts ever differ
    return twin


TS_TWIN = mutable_twin(Timestamp)
# "YYYY-MM-DDTHH:MM:SS" -> (seconds since the epoch, (year, month, day, hour, minute, second)).
TS_PREFIX: dict[str, tuple[int, tuple[int, int, int, int, int, int]]] = {}
_FRACTION_SCALE = (10**8, 10**7, 10**6, 10**5, 10**4, 10**3, 100, 10, 1)


def ts_prefix(prefix: str) -> tuple[int, tuple[int, int, int, int, int, int]] | None:
    """Seconds and civil fields of a `YYYY-MM-DDTHH:MM:SS` prefix (validated by
    Timestamp.parse), or None if it is not one."""
    hit = TS_PREFIX.get(prefix)
    if hit is None:
        try:
            seconds = Timestamp.parse(prefix + "Z").seconds
        except TimeValueError:
            return None
        when = _EPOCH + timedelta(seconds=seconds)
        hit = (seconds, (when.year, when.month, when.day, when.hour, when.minute, when.second))
        if len(TS_PREFIX) >= _CACHE_LIMIT:
            TS_PREFIX.clear()
        TS_PREFIX[prefix] = hit
    return hit


def _ts_slow(value: Any) -> Timestamp:
    if not isinstance(value, str):
        raise BadValue(f"expected an RFC 3339 timestamp string, got {describe(value)}")
    try:
        return Timestamp.parse(value)
    except TimeValueError as e:
        raise BadValue(str(e)) from None


def x_event_time(value: Any) -> tuple[Timestamp, datetime]:
    """A timestamp and the same instant as a microsecond datetime (`Timestamp.to_datetime`).
    The usual UTC `...ss.fffZ` form is parsed by slicing, with its validated seconds prefix
    cached (consecutive events share it); anything else goes through `Timestamp.parse`."""
    if value.__class__ is str:
        size = len(value)
        if 21 < size < 31 and value[19] == "." and value[-1] == "Z":
            fraction = value[20:-1]
            if fraction.isdecimal():
                hit = ts_prefix(value[:19])
                if hit is not None:
                    nanos = int(fraction) * _FRACTION_SCALE[size - 22]
                    ts: Any = _new(TS_TWIN)
                    ts.seconds = hit[0]
                    ts.nanos = nanos
                    ts.__class__ = Timestamp
                    return ts, datetime(*hit[1], nanos // 1000, UTC)
    ts = _ts_slow(value)
    return ts, ts.to_datetime()


def x_timestamp(value: Any) -> Timestamp:
    return x_event_time(value)[0]


@cache
def enum_table(cls: type[enum.IntEnum]) -> dict[str, enum.IntEnum]:
    """Every accepted spelling of every member: full proto name, bare name, PascalCase."""
    prefix = PROTO_PREFIX[cls]
    table: dict[str, enum.IntEnum] = {}
    for name, member in cls.__members__.items():
        bare = name[1:] if name.startswith("_") and not name[1:].isidentifier() else name
        pascal = "".join(part.capitalize() for part in bare.split("_"))
        for spelling in (pascal, bare, prefix + bare):
            table.setdefault(spelling, member)
    return table


@cache
def enum_names(cls: type[enum.IntEnum]) -> dict[enum.IntEnum, str]:
    """Member -> canonical proto name (the first spelling of each number)."""
    prefix = PROTO_PREFIX[cls]
    names: dict[enum.IntEnum, str] = {}
    for name, member in cls.__members__.items():
        bare = name[1:] if name.startswith("_") and not name[1:].isidentifier() else name
        names.setdefault(member, prefix + bare)
    return names


_PASCAL = re.compile("([A-Z]+)")


def x_enum(cls: type[enum.IntEnum], value: Any) -> enum.IntEnum:
    """An enum from its full name, bare name, PascalCase shorthand or number."""
    table = enum_table(cls)
    if isinstance(value, str):
        member = table.get(value)
        if member is None:
            member = table.get(_PASCAL.sub(r"_\1", value).upper().lstrip("_"))
        if member is None and _INT.match(value):
            member = _enum_number(cls, int(value))
        if member is None:
            raise BadValue(f"unknown {cls.__name__} value {value[:60]!r}")
        return member
    if isinstance(value, int) and value is not True and value is not False:
        member = _enum_number(cls, value)
        if member is None:
            raise BadValue(f"unknown {cls.__name__} number {value}")
        return member
    raise BadValue(f"expected a {cls.__name__} name, got {describe(value)}")


def _enum_number(cls: type[enum.IntEnum], number: int) -> enum.IntEnum | None:
    try:
        return cls(number)
    except ValueError:
        return None


def x_object(value: Any) -> dict[str, Any]:
    """The slow path of the object check: accept any str-keyed Mapping, refuse the rest."""
    if isinstance(value, Mapping):
        result = dict(value)
        for key in result:
            if not isinstance(key, str):
                raise BadValue(f"object keys must be strings, got {describe(key)}")
        return result
    raise BadValue(f"expected a JSON object, got {describe(value)}")


def x_repeated(convert: Fn, value: Any) -> tuple[Any, ...]:
    """A JSON array through `convert`; on failure, find the index for the error path."""
    if value.__class__ is not list:
        if not isinstance(value, list | tuple):
            raise BadValue(f"expected a JSON array, got {describe(value)}")
        value = list(value)
    try:
        return tuple([convert(item) for item in value])
    except (BadValue, *CONVERSION_ERRORS):
        pass
    for index, item in enumerate(value):
        try:
            convert(item)
        except BadValue as e:
            e.segs.append(f"[{index}]")
            raise
        except CONVERSION_ERRORS as e:
            raise BadValue(f"{type(e).__name__}: {e}", f"[{index}]") from None
    raise BadValue("conversion failed")  # pragma: no cover - the loop re-raises


def x_map(convert: Fn, value: Any) -> Mapping[str, Any]:
    """A JSON object of string keys through `convert` for each value (order kept)."""
    if value.__class__ is not dict:
        value = x_object(value)
    if not value:
        return EMPTY_MAP
    try:
        return {key: convert(item) for key, item in value.items()}
    except (BadValue, *CONVERSION_ERRORS):
        pass
    for key, item in value.items():
        try:
            convert(item)
        except BadValue as e:
            e.segs.append(key_segment(key))
            raise
        except CONVERSION_ERRORS as e:
            raise BadValue(f"{type(e).__name__}: {e}", key_segment(key)) from None
    raise BadValue("conversion failed")  # pragma: no cover - the loop re-raises


def extra_keys(
    obj: dict[str, Any], known: frozenset[str], aliases: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Split an object with keys beyond `known`: proto (snake_case) names are renamed to their
    JSON names, the rest are returned as unknown fields (deep-copied raw JSON)."""
    out: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for key, value in obj.items():
        name = key if key in known else aliases.get(key)
        if name is None:
            unknown[key] = copy_json(value)
        elif name in out:
            raise BadValue("field given twice (JSON name and proto name)", key_segment(key))
        else:
            out[name] = value
    return out, unknown or None


# --- formatters: Python value -> canonical JSON ----------------------------------------------

_INF = math.inf


def f_double(value: float) -> float | str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


_b2a = binascii.b2a_base64
_B64_CACHE: dict[bytes, str] = {}


def f_bytes(value: bytes) -> str:
    return _b2a(value, newline=False).decode("ascii")


def f_bytes_cached(value: bytes) -> str:
    """`f_bytes` through a small cache, for map values (`Payload.metadata`) that repeat."""
    hit = _B64_CACHE.get(value)
    if hit is None:
        hit = _b2a(value, newline=False).decode("ascii")
        if len(value) <= 96:
            if len(_B64_CACHE) >= _CACHE_LIMIT:
                _B64_CACHE.clear()
            _B64_CACHE[bytes(value)] = hit
    return hit


_TS_TEXT: dict[int, str] = {}


def f_timestamp(value: Timestamp) -> str:
    """Like `str(Timestamp)`, with the text of whole seconds cached."""
    seconds = value.seconds
    head = _TS_TEXT.get(seconds)
    if head is None:
        head = str(Timestamp(seconds, 0))[:-1]
        if len(_TS_TEXT) >= _CACHE_LIMIT:
            _TS_TEXT.clear()
        _TS_TEXT[seconds] = head
    nanos = value.nanos
    if nanos == 0:
        return head + "Z"
    if nanos % 1_000_000 == 0:
        return f"{head}.{nanos // 1_000_000:03d}Z"
    if nanos % 1_000 == 0:
        return f"{head}.{nanos // 1_000:06d}Z"
    return f"{head}.{nanos:09d}Z"


def f_duration(value: Duration) -> str:
    if value.nanos == 0:
        return f"{value.seconds}s"
    return str(value)


# --- the generator ---------------------------------------------------------------------------

_INT_KINDS = {
    "int32": "x_int32",
    "sint32": "x_int32",
    "sfixed32": "x_int32",
    "uint32": "x_uint32",
    "fixed32": "x_uint32",
    "int64": "x_int64",
    "sint64": "x_int64",
    "sfixed64": "x_int64",
    "uint64": "x_uint64",
    "fixed64": "x_uint64",
}
_CONVERTERS: dict[str, Fn] = {
    "string": x_string,
    "bool": x_bool,
    "double": x_double,
    "float": x_float,
    "bytes": x_bytes,
    "duration": x_duration,
    "timestamp": x_timestamp,
    "int32": x_int32,
    "uint32": x_uint32,
    "int64": x_int64,
    "uint64": x_uint64,
}
_ENCODERS: dict[str, Fn] = {
    "int64": str,
    "uint64": str,
    "double": f_double,
    "float": f_double,
    "bytes": f_bytes,
    "duration": f_duration,
    "timestamp": f_timestamp,
}


def _literal(default: object) -> str | None:
    """Source text for a default that is a plain constant, else None (enum members, maps)."""
    if default is None or type(default) in (str, int, bool, float, tuple, bytes):
        return repr(default)
    return None


def _attr(obj: str, name: str) -> str:
    """Source for `obj.name`; a field named like a Python keyword could not be written so."""
    if keyword.iskeyword(name):
        raise AssertionError(f"field name {name!r} is a Python keyword")
    return f"{obj}.{name}"


def _kind_family(kind: str) -> str:
    return _INT_KINDS.get(kind, "x_" + kind)[2:]


class Hooks(NamedTuple):
    """The compiled functions: structure and unstructure per message class, and each class's
    shared all-default instance (what `{}` decodes to)."""

    structure: dict[type, Fn]
    unstructure: dict[type, Fn]
    empty: dict[type, Any]


class _Gen:
    def __init__(self) -> None:
        self.ns: dict[str, Any] = {
            "new": _new,
            "BadValue": BadValue,
            "ERRORS": CONVERSION_ERRORS,
            "x_object": x_object,
            "extra": extra_keys,
            "rep": x_repeated,
            "mp": x_map,
            "x_enum": x_enum,
            "x_bytes_cached": x_bytes_cached,
            "BC": _BYTES_CACHE,
            "REP_ERRORS": (BadValue, *CONVERSION_ERRORS),
            "dumps": orjson.dumps,
            "DUMPS_OPTION": _DUMPS_OPTION,
            "DC": _DURATION_CACHE,
            "INF": _INF,
            "f_double": f_double,
            "f_bytes": f_bytes,
            "f_timestamp": f_timestamp,
            "f_duration": f_duration,
            "copy_json": copy_json,
            "EMPTY_MAP": EMPTY_MAP,
        }
        self.ns.update({"x_" + k: v for k, v in _CONVERTERS.items()})
        self.ids = {cls: i for i, cls in enumerate(FIELDS)}
        self.enum_ids: dict[type, int] = {}

    def const(self, name: str, value: Any) -> str:
        self.ns[name] = value
        return name

    def enum_id(self, cls: type[enum.IntEnum]) -> int:
        if cls not in self.enum_ids:
            i = self.enum_ids[cls] = len(self.enum_ids)
            self.ns[f"ET{i}"] = enum_table(cls)
            self.ns[f"EN{i}"] = enum_names(cls)
            self.ns[f"EC{i}"] = cls
            self.ns[f"XE{i}"] = lambda v, cls=cls: x_enum(cls, v)
            self.ns[f"FE{i}"] = enum_names(cls).__getitem__
        return self.enum_ids[cls]

    def element(self, spec: FieldSpec) -> str:
        """The name of a one-value converter for repeated and map values."""
        if spec.kind == "message":
            return f"s{self.ids[spec.target]}"  # type: ignore[index]
        if spec.kind == "enum":
            return f"XE{self.enum_id(spec.target)}"  # type: ignore[arg-type]
        if spec.kind == "bytes" and spec.label is Label.MAP:
            return "x_bytes_cached"
        return "x_" + _kind_family(spec.kind)

    def convert_single(self, spec: FieldSpec) -> tuple[str | None, str, str]:
        """(test, fast value, value): when the JSON value `v` passes `test`, `fast value`
        is the field's value; otherwise `value` converts (or refuses) it."""
        kind = spec.kind
        family = _kind_family(kind)
        if kind == "string":
            return "v.__class__ is str", "v", "x_string(v)"
        if kind == "bool":
            return "v is True or v is False", "v", "x_bool(v)"
        if family == "int32":
            return "v.__class__ is int and -2147483648 <= v <= 2147483647", "v", "x_int32(v)"
        if family == "uint32":
            return "v.__class__ is int and 0 <= v <= 4294967295", "v", "x_uint32(v)"
        if family in ("int64", "uint64"):
            # Fewer than 19 decimal digits always fit in 63 bits; int() takes any Unicode
            # decimal digit, as protobuf's own Python parser does.
            return (
                "v.__class__ is str and len(v) < 19 and v.isdecimal()",
                "int(v)",
                f"x_{family}(v)",
            )
        if kind == "double":
            return "v.__class__ is float", "v", "x_double(v)"
        if kind == "duration":
            return None, "", "(DC.get(v) if v.__class__ is str else None) or x_duration(v)"
        if kind == "enum":
            i = self.enum_id(spec.target)  # type: ignore[arg-type]
            return None, "", f"(ET{i}.get(v) if v.__class__ is str else None) or x_enum(EC{i}, v)"
        if kind == "message":
            return None, "", f"s{self.ids[spec.target]}(v)"  # type: ignore[index]
        return None, "", f"x_{kind}(v)"  # bytes, float, timestamp

    def encode_single(self, spec: FieldSpec, key: str) -> list[str]:
        kind = spec.kind
        family = _kind_family(kind)
        test = "if v is not None:" if spec.presence else "if v:"
        if kind == "message":
            return [f"if v is not None: d[{key!r}] = u{self.ids[spec.target]}(v)"]  # type: ignore[index]
        if kind in ("timestamp", "duration"):
            return [f"if v is not None: d[{key!r}] = f_{kind}(v)"]
        if kind in ("string", "bool") or family in ("int32", "uint32"):
            return [f"{test} d[{key!r}] = v"]
        if family in ("int64", "uint64"):
            return [f"{test} d[{key!r}] = str(v)"]
        if kind in ("double", "float"):
            # A double is always written as a float (`2.0`, not `2`), as protobuf's Python
            # MessageToDict does and as the recorded histories have it (`"backoffCoefficient":
            # 2.0`); NaN and the infinities become the strings proto3 JSON prescribes.
            return [f"{test} d[{key!r}] = float(v) if -INF < v < INF else f_double(v)"]
        if kind == "bytes":
            return [f"{test} d[{key!r}] = f_bytes(v)"]
        if kind == "enum":
            i = self.enum_id(spec.target)  # type: ignore[arg-type]
            return [f"{test} d[{key!r}] = EN{i}[v]"]
        raise AssertionError(kind)

    def encoder(self, spec: FieldSpec) -> str:
        if spec.kind == "message":
            return f"u{self.ids[spec.target]}"  # type: ignore[index]
        if spec.kind == "enum":
            return f"FE{self.enum_id(spec.target)}"  # type: ignore[arg-type]
        if spec.kind == "bytes" and spec.label is Label.MAP:
            return self.const("F_f_bytes_cached", f_bytes_cached)
        fn = _ENCODERS.get(_kind_family(spec.kind)) or _ENCODERS.get(spec.kind)
        return self.const(f"F_{fn.__name__}", fn) if fn is not None else ""

    def structure_source(self, cls: type, i: int) -> str:
        specs = FIELDS[cls]
        names = [f.name for f in dataclasses.fields(cls)]
        if names != [s.name for s in specs] + ["unknown_fields"]:
            raise AssertionError(f"{cls.__name__}: dataclass fields differ from schema.FIELDS")
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        keys = [json_name(s.name) for s in specs]
        self.const(f"C{i}", cls)
        self.const(f"T{i}", mutable_twin(cls))
        self.const(f"K{i}", frozenset(keys))
        self.const(f"A{i}", {s.name: k for s, k in zip(specs, keys, strict=True) if s.name != k})
        self.const(f"E{i}", cls())
        # Leaf messages (no nested message, no bytes blob) repeat across a history (task
        # queue, activity type, retry policy, ...): their exact JSON text keys a cache of
        # decoded (immutable) instances, which saves time and garbage-collector pressure.
        cached = bool(specs) and all(s.kind not in ("message", "bytes") for s in specs)
        lines = [
            f"def s{i}(d, _t=None):",
            "    if d.__class__ is not dict: d = x_object(d)",
            f"    if not d: return E{i}",
        ]
        if cached:
            self.const(f"MC{i}", {})
            lines += [
                "    try: ck = dumps(d, option=DUMPS_OPTION)",
                "    except ERRORS: ck = None",
                "    else:",
                f"        o = MC{i}.get(ck)",
                "        if o is not None: return o",
            ]
        lines += [
            f"    if K{i}.issuperset(d): u = None",
            f"    else: d, u = extra(d, K{i}, A{i})",
            "    g = d.get",
            f"    o = new(T{i})",
            "    k = None",
            "    try:",
        ]
        for j, (spec, key) in enumerate(zip(specs, keys, strict=True)):
            default = defaults[spec.name]
            literal = _literal(default) or self.const(f"D{i}_{j}", default)
            element = self.element(spec)
            target = _attr("o", spec.name)
            lines += [
                f"        k = {key!r}",
                "        v = g(k)",
                f"        if v is None: {target} = {literal}",
            ]
            if spec.label is Label.REPEATED:
                # The comprehension is the fast path; `rep` re-runs a failure to locate it.
                lines += [
                    "        elif v.__class__ is list:",
                    f"            try: {target} = ({element}(v[0]),) if len(v) == 1 else"
                    f" tuple([{element}(x) for x in v])",
                    f"            except REP_ERRORS: {target} = rep({element}, v)",
                    f"        else: {target} = rep({element}, v)",
                ]
            elif spec.label is Label.MAP:
                value = (
                    "BC.get(x) or x_bytes_cached(x)"
                    if element == "x_bytes_cached"
                    else (f"{element}(x)")
                )
                lines += [
                    "        elif v.__class__ is dict:",
                    f"            try: {target} = {{kk: {value} for kk, x in v.items()}}"
                    " or EMPTY_MAP",
                    f"            except REP_ERRORS: {target} = mp({element}, v)",
                    f"        else: {target} = mp({element}, v)",
                ]
            else:
                test, fast, slow = self.convert_single(spec)
                if test is not None:
                    lines.append(f"        elif {test}: {target} = {fast}")
                lines.append(f"        else: {target} = {slow}")
        lines += [
            "        o.unknown_fields = u",
            f"        o.__class__ = C{i}",
            "    except BadValue as e:",
            "        if k is not None: e.segs.append('.' + k)",
            "        raise",
            "    except ERRORS as e:",
            "        raise BadValue(f'{type(e).__name__}: {e}', None if k is None else '.' + k)"
            " from None",
        ]
        if cached:
            lines += [
                "    if ck is not None and b'null' not in ck:",
                f"        if len(MC{i}) >= {_MESSAGE_CACHE_LIMIT}: MC{i}.clear()",
                f"        MC{i}[ck] = o",
            ]
        lines.append("    return o")
        return "\n".join(lines) + "\n"

    def unstructure_source(self, cls: type, i: int) -> str:
        lines = [f"def u{i}(o):", "    d = {}"]
        for spec in FIELDS[cls]:
            key = json_name(spec.name)
            lines.append(f"    v = {_attr('o', spec.name)}")
            if spec.label is Label.SINGLE:
                lines += ["    " + line for line in self.encode_single(spec, key)]
                continue
            fn = self.encoder(spec)
            if spec.label is Label.REPEATED:
                value = f"[{fn}(x) for x in v]" if fn else "list(v)"
            else:
                value = f"{{kk: {fn}(x) for kk, x in v.items()}}" if fn else "dict(v)"
            lines.append(f"    if v: d[{key!r}] = {value}")
        lines += [
            "    v = o.unknown_fields",
            "    if v: d.update(copy_json(v))",
            "    return d",
        ]
        return "\n".join(lines) + "\n"


@cache
def compile_hooks() -> Hooks:
    """Generate, compile and return the hooks of every message class (once per process)."""
    gen = _Gen()
    chunks: list[str] = []
    for cls, i in gen.ids.items():
        chunks.append(gen.structure_source(cls, i))
        chunks.append(gen.unstructure_source(cls, i))
    code = compile("\n".join(chunks), "<runhistory.adapters._json_hooks generated>", "exec")
    exec(code, gen.ns)
    return Hooks(
        structure={cls: gen.ns[f"s{i}"] for cls, i in gen.ids.items()},
        unstructure={cls: gen.ns[f"u{i}"] for cls, i in gen.ids.items()},
        empty={cls: gen.ns[f"E{i}"] for cls, i in gen.ids.items()},
    )

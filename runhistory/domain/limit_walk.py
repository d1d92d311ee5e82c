"""The per-event walk of strict mode's id and payload limits, generated once per set of limits.

Every event of every strict load is walked, so the walk is generated as straight-line code per
message class (as `runhistory.projections.size` does for sizes) rather than interpreted from a
plan: a generic walk cost about half as much again as the whole load of the 50k history. A payload
field is first bounded from above by a cheap sum (each framing byte count replaced by a ceiling),
and sized exactly only when that bound passes the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from runhistory.domain import messages as m
from runhistory.domain.fieldspec import FieldSpec, Label

__all__ = ["Breach", "Plan", "Sizers", "walkers"]

Plan = tuple[tuple[str, str, FieldSpec], ...]  # (what: id|size|descend, camelCase name, spec)
Walker = Callable[[Any], None]


class Sizers(NamedTuple):
    """The exact sizers, as the server measures each kind of field."""

    utf8_len: Callable[[str], int]
    payload: Callable[[Any], int]
    payloads: Callable[[Any], int]
    payload_map: Callable[[Any, FieldSpec], int]


# a ceiling on one length-delimited framing (tag + length varint) and on a map entry's two:
# with sizes below 2**35 a framing costs at most 6 bytes
_FRAME = 6
_BOUND_PAYLOADS = """\
b = 0
for p in v.payloads:
    b += len(p.data) + 2 * _F
    if p.metadata:
        for k, x in p.metadata.items():
            b += 4 * len(k) + len(x) + 3 * _F
    if p.external_payloads:
        b += 3 * _F * len(p.external_payloads)"""
_BOUND_PAYLOAD = """\
b = len(v.data) + _F
if v.metadata:
    for k, x in v.metadata.items():
        b += 4 * len(k) + len(x) + 3 * _F
if v.external_payloads:
    b += 3 * _F * len(v.external_payloads)"""


class Breach(Exception):
    """A field past its limit, with its path (innermost first) built on the way out."""

    def __init__(self, what: str, actual: int, field: str) -> None:
        super().__init__(what)
        self.what = what
        self.actual = actual
        self.path = [field]


def _indent(lines: list[str], by: int = 1) -> list[str]:
    return ["    " * by + line for line in lines]


def _guarded(call: str, label: str) -> list[str]:
    """`call`, adding `label` (an f-string body) to a breach's path on the way out."""
    return [
        "try:",
        f"    {call}",
        "except _Breach as e:",
        f"    e.path.append(f{label!r})",
        "    raise",
    ]


def _size_lines(spec: FieldSpec, key: str, var: str, field: str, payload_limit: int) -> list[str]:
    """Bound, then size exactly, the payload-holding value `var` of field `spec`."""
    fail = [f"if s > {payload_limit}:", f"    raise _Breach('size', s, f{field!r})"]
    if spec.label is Label.MAP or spec.target in (m.Memo, m.SearchAttributes):
        # maps of payloads (marker details, memo, search attributes) are rare: size them exactly
        return [f"s = _size_of({var}, _SPECS[{key!r}])", *fail]
    bound = _BOUND_PAYLOADS if spec.target is m.Payloads else _BOUND_PAYLOAD
    exact = "_payloads_size" if spec.target is m.Payloads else "_payload_size"
    return [
        *bound.replace("v.", f"{var}.").splitlines(),
        f"if b > {payload_limit}:",
        f"    s = {exact}({var})",
        *_indent(fail),
    ]


def _lines(
    what: str, name: str, spec: FieldSpec, key: str, id_limit: int | None, payload_limit: int | None
) -> list[str]:
    get = f"v = o.{spec.name}"
    if what == "id":
        if id_limit is None:
            return []
        return [
            get,
            f"if v.__class__ is str and 4 * len(v) > {id_limit}:",
            "    s = _utf8_len(v)",
            f"    if s > {id_limit}:",
            f"        raise _Breach('id', s, {name!r})",
        ]
    if what == "size":
        if payload_limit is None:
            return []
        if spec.label is Label.REPEATED:
            each = _size_lines(spec, key, "x", name + "[{i}]", payload_limit)
            return [get, "for i, x in enumerate(v):", *_indent(each)]
        return [get, "if v:", *_indent(_size_lines(spec, key, "v", name, payload_limit))]
    if spec.label is Label.REPEATED:
        call = "_W[x.__class__](x)"
        return [get, "for i, x in enumerate(v):", *_indent(_guarded(call, name + "[{i}]"))]
    if spec.label is Label.MAP:
        call = "_W[x.__class__](x)"
        return [get, "for k, x in v.items():", *_indent(_guarded(call, name + "[{k!r}]"))]
    return [get, "if v is not None:", *_indent(_guarded("_W[v.__class__](v)", name))]


class _Walkers(dict[type, Walker]):
    """A message class no plan covers (none is expected) holds nothing to check."""

    def __missing__(self, cls: type) -> Walker:
        return _nothing


def _nothing(message: Any) -> None:
    return None


def walkers(
    plans: Mapping[type, Plan],
    id_limit: int | None,
    payload_limit: int | None,
    sizes: Sizers,
) -> dict[type, Walker]:
    """One function per message class raising `Breach` for its first field past a limit;
    `sizes` are the exact Payload, Payloads and payload-map sizers."""
    functions = _Walkers()
    specs: dict[str, FieldSpec] = {}
    namespace: dict[str, Any] = {
        "_Breach": Breach,
        "_F": _FRAME,
        "_W": functions,
        "_utf8_len": sizes.utf8_len,
        "_payload_size": sizes.payload,
        "_payloads_size": sizes.payloads,
        "_size_of": sizes.payload_map,
        "_SPECS": specs,
    }
    source: list[str] = []
    for index, plan in enumerate(plans.values()):
        body: list[str] = []
        for what, name, spec in plan:
            key = f"{index}:{name}"
            specs[key] = spec
            body.extend(_lines(what, name, spec, key, id_limit, payload_limit))
        source.append(f"def _w{index}(o):")
        source.extend(_indent(body or ["pass"]))
    code = compile("\n".join(source), "<runhistory.domain.limit_walk generated>", "exec")
    exec(code, namespace)
    for index, cls in enumerate(plans):
        functions[cls] = namespace[f"_w{index}"]
    return functions

"""How one proto field of a message class is shaped: the vocabulary of the generated schema."""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["FieldSpec", "Label"]


class Label(enum.Enum):
    SINGLE = "single"
    REPEATED = "repeated"
    MAP = "map"  # map<string, V>; kind and target describe V


class FieldSpec(NamedTuple):
    """One field: its Python name, proto number, kind (`int64`, `message`, `timestamp`, ...),
    target class (message or enum class, else None), label, and whether an unset scalar is
    distinguishable from its default (proto3 `optional` or a oneof member)."""

    name: str
    number: int
    kind: str
    target: type | None
    label: Label
    presence: bool

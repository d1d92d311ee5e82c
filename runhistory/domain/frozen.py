"""An empty, immutable, hashable mapping: the default of every proto `map<...>` field."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

__all__ = ["EMPTY_MAP"]


class _EmptyMap(Mapping[str, Any]):
    __slots__ = ()

    def __getitem__(self, key: str) -> NoReturn:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and len(other) == 0

    def __repr__(self) -> str:
        return "{}"


EMPTY_MAP: Mapping[str, Any] = _EmptyMap()

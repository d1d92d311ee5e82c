"""What a reader has seen of one run's history, page by page, as the server sends it.

A long poll (`wait_new_event=True`) answers with the events written since the last page, but
the server also appends a transient or speculative workflow task's `taskId`-less events to the
last page (I13), and later sends the durable events that replace them under the same ids. A
`RunFeed` keeps the durable events in order (ignoring ones it already has, refusing gaps) and
only the latest tail, so `history()` is always what one full fetch would have returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runhistory.domain.run_key import RunKey
from runhistory.domain.transitions import CLOSE_EVENTS

__all__ = ["CLOSE_EVENT_NAMES", "FeedGap", "RunFeed"]

CLOSE_EVENT_NAMES = frozenset(f"EVENT_TYPE_{e.name}" for e in CLOSE_EVENTS)


class FeedGap(Exception):
    """A page skipped events: the reader must start again from the first page."""

    def __init__(self, key: RunKey, expected: int, got: int) -> None:
        self.key = key
        self.expected = expected
        self.got = got
        super().__init__(f"run {key}: expected event {expected} from the server, got {got}")


def _durable(event: Mapping[str, Any]) -> bool:
    return str(event.get("taskId") or "0") != "0"


def _event_id(event: Mapping[str, Any]) -> int:
    return int(event.get("eventId") or 0)


@dataclass(slots=True)
class RunFeed:
    """One run's history as read so far, and the page token to read on from."""

    key: RunKey
    durable: list[dict[str, Any]] = field(default_factory=list)
    tail: list[dict[str, Any]] = field(default_factory=list)
    token: bytes = b""

    @property
    def closed(self) -> bool:
        """Whether the last durable event closes the run."""
        return bool(self.durable) and self.durable[-1].get("eventType") in CLOSE_EVENT_NAMES

    def absorb(self, events: Iterable[Mapping[str, Any]]) -> bool:
        """Take one page of proto3-JSON events; return whether the history changed."""
        before = (len(self.durable), self.tail)
        tail: list[dict[str, Any]] | None = None
        for event in events:
            event_id = _event_id(event)
            if _durable(event):
                if event_id <= len(self.durable):
                    continue
                if event_id != len(self.durable) + 1:
                    raise FeedGap(self.key, len(self.durable) + 1, event_id)
                self.durable.append(dict(event))
                tail = None if tail is None else []
            else:
                tail = [] if tail is None else tail
                if event_id == len(self.durable) + len(tail) + 1:
                    tail.append(dict(event))
        if tail is not None:
            self.tail = tail
        elif self.tail and _event_id(self.tail[0]) != len(self.durable) + 1:
            self.tail = []
        return (len(self.durable), self.tail) != before

    def history(self) -> dict[str, Any]:
        """The history as one full fetch would return it: `{"events": [...]}`."""
        return {"events": [*self.durable, *self.tail]}

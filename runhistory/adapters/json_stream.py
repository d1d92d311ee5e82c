"""Read a history's events one at a time from its JSON text, so a long history never exists
twice in memory (once as a tree of parsed dicts, once as events).

Only the shapes a history has in the wild are streamed: `{"events": [...]}` with `events` as its
first key, and a bare array. Anything else returns None and the caller parses the text whole."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from runhistory.domain.errors import MalformedHistory

__all__ = ["stream_events", "stream_file_events"]

_OPENING = re.compile(r'\s*(?:\{\s*"events"\s*:\s*)?\[')
_SPACE = re.compile(r"[ \t\n\r]*")
# json (unlike orjson) accepts escaped lone surrogates, which are not text: parse those whole
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_decode = json.JSONDecoder().raw_decode


def stream_events(text: str) -> Iterator[Any] | None:
    """The raw events of `text` one by one, or None when it is not a streamable shape."""
    opening = _OPENING.match(text)
    if opening is None or SURROGATE_ESCAPE.search(text):
        return None
    return _events(text, opening.end(), wrapped=text.lstrip().startswith("{"))


def _events(text: str, at: int, *, wrapped: bool) -> Iterator[Any]:
    index = 0
    at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
    if text.startswith("]", at):
        _closing(text, at + 1, wrapped)
        return
    while True:
        try:
            event, at = _decode(text, at)
        except RecursionError:
            raise MalformedHistory("nested too deeply", path=f"$.events[{index}]") from None
        except json.JSONDecodeError as e:
            raise MalformedHistory(f"not valid JSON: {e.msg}", path=f"$.events[{index}]") from None
        yield event
        index += 1
        at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
        if text.startswith(",", at):
            at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
            continue
        if text.startswith("]", at):
            _closing(text, at + 1, wrapped)
            return
        raise MalformedHistory("expected ',' or ']' between events", path=f"$.events[{index}]")


def _closing(text: str, at: int, wrapped: bool) -> None:
    """Check what follows the events: nothing, or the end of the wrapping object (other keys
    of that object are ignored, as they are when the text is parsed whole)."""
    rest = text[at:].strip()
    if (wrapped and not (rest == "}" or rest.startswith(","))) or (not wrapped and rest):
        raise MalformedHistory("unexpected text after the events", path="$")


_CHUNK = 1 << 20


def stream_file_events(open_binary: Callable[[], BinaryIO]) -> Iterator[Any] | None:
    """Like `stream_events`, reading a file a chunk at a time so not even its text is held
    whole. `open_binary` opens the (decompressed) bytes; None if it is not a streamable shape."""
    with open_binary() as f:
        head = f.read(_CHUNK)
    if _OPENING.match(head[:4096].decode("utf-8", "ignore")) is None:
        return None
    return _file_events(open_binary)


def _file_events(open_binary: Callable[[], BinaryIO]) -> Iterator[Any]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open_binary() as f:
        buffer = ""
        more = True

        def fill() -> bool:
            nonlocal buffer
            chunk = f.read(_CHUNK)
            try:
                buffer += decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                raise MalformedHistory(f"not UTF-8 text: {e.reason}") from None
            return bool(chunk)

        while more and "[" not in buffer:
            more = fill()
        opening = _OPENING.match(buffer)
        if opening is None:
            raise MalformedHistory("expected a history object or an array of events")
        wrapped = buffer.lstrip().startswith("{")
        at, index = opening.end(), 0

        def skip(at: int) -> int:
            """The next non-blank position, reading on while the buffer ends in blanks."""
            nonlocal more
            while True:
                at = _SPACE.match(buffer, at).end()  # type: ignore[union-attr]
                if at < len(buffer) or not more:
                    return at
                more = fill()

        while True:
            at = skip(at)
            if buffer.startswith("]", at):
                while more:
                    more = fill()
                _closing(buffer, at + 1, wrapped)
                return
            try:
                event, end = _decode(buffer, at)
            except RecursionError:
                raise MalformedHistory("nested too deeply", path=f"$.events[{index}]") from None
            except json.JSONDecodeError as e:
                if more:  # the event may run on into the next chunk
                    more = fill()
                    continue
                raise MalformedHistory(
                    f"not valid JSON: {e.msg}", path=f"$.events[{index}]"
                ) from None
            yield event
            index += 1
            at = skip(end)
            if buffer.startswith(",", at):
                at += 1
            elif not buffer.startswith("]", at):
                raise MalformedHistory(
                    "expected ',' or ']' between events", path=f"$.events[{index}]"
                )
            if at > _CHUNK:  # drop what has been read, so the buffer stays about a chunk long
                buffer, at = buffer[at:], 0

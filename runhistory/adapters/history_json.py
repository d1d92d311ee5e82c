"""Temporal history JSON in and out: `load_history` and `dump_history`.

Accepts the canonical proto3 JSON (`{"events": [...]}`), a bare array of events, a
GetWorkflowExecutionHistory response (`{"history": {"events": [...]}}`), PascalCase enum names,
int64 values as numbers, and the `taskId`-less transient tail (I13). Writes the canonical form.
"""

from __future__ import annotations

import gc
import gzip
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from runhistory.adapters.codec import EventCodec
from runhistory.adapters.json_stream import stream_events, stream_file_events
from runhistory.domain.decide import decide
from runhistory.domain.errors import HistoryError, InvalidHistory, MalformedHistory, RunKeyError
from runhistory.domain.event_base import HistoryEvent, HistoryStarted
from runhistory.domain.limits import NO_LIMITS, TEMPORAL_LIMITS, HistoryLimits, LimitChecker
from runhistory.domain.run import WorkflowRun
from runhistory.domain.run_key import RunKey
from runhistory.domain.state import RunState

__all__ = [
    "HistoryLimits",
    "HistorySource",
    "default_codec",
    "dump_history",
    "events_of",
    "gc_paused",
    "limit_checker",
    "load_history",
    "parse_history_json",
]

HistorySource = str | bytes | os.PathLike[str] | Mapping[str, Any] | list[Any]

_NO_KEY = RunKey("", "")
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_STARTED_KEY = "workflowExecutionStartedEventAttributes"
_WFT_FAILED_KEY = "workflowTaskFailedEventAttributes"


def parse_history_json(source: HistorySource) -> Any:
    """Read a source into its JSON value: a path (optionally .gz), JSON text, bytes or a value."""
    if isinstance(source, (Mapping, list)):
        return source
    return _loads(_read(source))


def _read(source: str | bytes | os.PathLike[str]) -> str | bytes:
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and not _looks_like_json(source)
    ):
        path = Path(source)
        return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return source


def _text(source: str | bytes | os.PathLike[str]) -> str:
    raw = _read(source)
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode()
    except UnicodeDecodeError as e:
        raise MalformedHistory(f"not UTF-8 text: {e.reason} at byte {e.start}") from None


def _looks_like_json(text: str) -> bool:
    stripped = text.lstrip()
    if not stripped:
        raise MalformedHistory("the history is empty")
    return stripped[:1] in ("{", "[")


def _loads(raw: str | bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise MalformedHistory(f"not valid JSON: {e}") from None


def events_of(doc: Any) -> list[Any]:
    """The list of raw events in any accepted history shape."""
    if isinstance(doc, Mapping) and "history" in doc and "events" not in doc:
        doc = doc["history"]
    if isinstance(doc, Mapping):
        events = doc.get("events")
        if not isinstance(events, list):
            raise MalformedHistory("expected an object with an `events` array", path="$.events")
        return events
    if isinstance(doc, list):
        return doc
    raise MalformedHistory("expected a history object or an array of events")


def _run_key(events: list[Any], workflow_id: str | None, namespace: str) -> RunKey | None:
    """The run's key, or None when the history does not begin with a started event (the
    validator then says so, at that event)."""
    first = events[0] if events else None
    attrs = first.get(_STARTED_KEY) if isinstance(first, Mapping) else None
    if not isinstance(attrs, Mapping):
        return None
    wid = attrs.get("workflowId") or workflow_id
    if not isinstance(wid, str) or not wid:
        raise RunKeyError(
            "the started event has no workflowId; pass workflow_id= to say which workflow it is"
        )
    run_id = attrs.get("originalExecutionRunId")
    for event in events:  # a reset run is named by its last RESET_WORKFLOW failure (I14)
        failed = event.get(_WFT_FAILED_KEY) if isinstance(event, Mapping) else None
        if isinstance(failed, Mapping) and "RESET" in str(failed.get("cause", "")).upper():
            run_id = failed.get("newRunId") or run_id
    if not isinstance(run_id, str) or not run_id:
        raise RunKeyError("the history does not name its run id (originalExecutionRunId)")
    return RunKey(wid, run_id, namespace)


def load_history(
    source: HistorySource,
    *,
    strict: bool = True,
    workflow_id: str | None = None,
    namespace: str = "default",
    collect_all: bool = False,
    codec: EventCodec | None = None,
    limits: HistoryLimits | None = None,
) -> WorkflowRun:
    """Read and validate one run's history. Raises a HistoryError subclass on anything a Temporal
    server could not have written (with `collect_all`, one InvalidHistory naming every problem).

    `limits`: Temporal's own limits (`runhistory.domain.limits`): ids of at most 1,000 UTF-8
    bytes, payload fields of at most 2 MiB, histories of at most 51,200 events and 50 MiB (the
    server's terminating transaction may follow the one that crossed). A breach raises
    `LimitExceeded` naming the event, the field and the limit. The default (None) enforces
    `TEMPORAL_LIMITS` in strict mode and nothing in lenient mode (`strict=False`); a
    `HistoryLimits` given here applies in either mode (`NO_LIMITS` switches all off, e.g. for a
    server whose dynamic config raised them).

    The cyclic garbage collector is paused while the events are built (and restored after):
    a long history allocates hundreds of thousands of objects, none of them cyclic garbage, and
    the collector would otherwise spend about as long re-scanning them as building them."""
    if limits is None:
        limits = TEMPORAL_LIMITS if strict else NO_LIMITS
    with gc_paused():
        return _load(source, strict, workflow_id, namespace, collect_all, codec, limits)


@cache
def default_codec(strict: bool) -> EventCodec:
    """One codec per mode for the process: building one takes ~13 ms (its converters are
    generated), more than reading a small history, and a codec holds no per-history state."""
    return EventCodec(strict=strict)


def limit_checker(limits: HistoryLimits) -> LimitChecker:
    """The `LimitChecker` that `load_history` judges a history with. It sizes the history as
    the server does (`_history_bytes`), so the size limit is checked too."""
    return LimitChecker(limits, _history_bytes, _event_size)


# The size functions below import `runhistory.projections` when first called, not with this
# module: that package loads every view (~30 ms), and only a load that checks the size limit
# needs it. There is no import cycle; it is start-up time.


def _history_bytes(run: WorkflowRun, limit: int) -> int:
    """The server's historySizeBytes of the run, for the 50 MiB limit. Sizing every event costs
    about a fifth of a long load, so the server's own running totals in the history (verified
    against the span between the last two) answer first; only a history they put past half the
    limit is sized event by event, as totals that understate by half would have to be forged."""
    from runhistory.projections.size import history_size_bytes

    estimate = history_size_bytes(run)
    if estimate <= limit // 2:
        return estimate
    return history_size_bytes(run, use_checkpoints=False)


def _event_size(event: HistoryEvent) -> int:
    from runhistory.projections.size import event_size

    return event_size(event)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bulk build of acyclic objects, then restore it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load(
    source: HistorySource,
    strict: bool,
    workflow_id: str | None,
    namespace: str,
    collect_all: bool,
    codec: EventCodec | None,
    limits: HistoryLimits,
) -> WorkflowRun:
    codec = codec or default_codec(strict)
    checker = limit_checker(limits) if limits.enabled else None
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and not _looks_like_json(source)
    ):
        run = _load_file(Path(source), workflow_id, namespace, codec, collect_all, checker)
        if run is not None:
            return run
    if not isinstance(source, (Mapping, list)):
        text = _text(source)
        # a reset run is named by a later event (I14), so only other runs stream
        stream = None if "RESET" in text or "Reset" in text else stream_events(text)
        if stream is not None:
            first = next(stream, None)
            if first is None:
                raise MalformedHistory("the history has no events", path="$.events")
            key = _run_key([first], workflow_id, namespace)
            return _record(itertools.chain((first,), stream), key, codec, collect_all, checker)
        source = _loads(text)
    events = events_of(source)
    if not events:
        raise MalformedHistory("the history has no events", path="$.events")
    key = _run_key(events, workflow_id, namespace)
    return _record(events, key, codec, collect_all, checker)


def _load_file(
    path: Path,
    workflow_id: str | None,
    namespace: str,
    codec: EventCodec,
    collect_all: bool,
    checker: LimitChecker | None,
) -> WorkflowRun | None:
    """Stream a history file event by event; None when it needs a whole parse instead (another
    shape, or a reset run, which a later event names: I14)."""

    def open_binary() -> BinaryIO:
        return gzip.open(path) if path.suffix == ".gz" else path.open("rb")  # type: ignore[return-value]

    with open_binary() as f:
        if any(
            b"RESET" in chunk or b"Reset" in chunk for chunk in iter(lambda: f.read(1 << 20), b"")
        ):
            return None
    stream = stream_file_events(open_binary)
    if stream is None:
        return None
    first = next(stream, None)
    if first is None:
        raise MalformedHistory("the history has no events", path="$.events")
    key = _run_key([first], workflow_id, namespace)
    return _record(itertools.chain((first,), stream), key, codec, collect_all, checker)


def _record(
    events: Iterable[Any],
    key: RunKey | None,
    codec: EventCodec,
    collect_all: bool,
    checker: LimitChecker | None = None,
) -> WorkflowRun:
    originator_id = (key or _NO_KEY).aggregate_id
    decode = codec.decode
    errors: list[HistoryError] = []
    run: WorkflowRun | None = None
    check = checker.check if checker is not None else None
    for index, raw in enumerate(events):
        try:
            event = decode(raw, originator_id=originator_id, index=index)
            if run is None:
                if checker is not None and key is not None:
                    checker.check_key(key)
                run = _start(event, key or _NO_KEY)
            else:
                run.record(event, errors=errors if collect_all else None)
            if check is not None:  # after record: an illegal event is reported as such first
                check(event)
        except HistoryError as e:
            if not collect_all or run is None:
                if collect_all:
                    raise InvalidHistory([*errors, e]) from None
                raise
            errors.append(e)
            if checker is not None and checker.stopped:
                break  # past the count limit for good: the rest would only use memory
    if checker is not None and run is not None:
        try:
            checker.finish(run)
        except HistoryError as e:
            if not collect_all:
                raise
            errors.append(e)
    if errors:
        raise InvalidHistory(errors)
    assert run is not None
    return run


def _start(event: HistoryEvent, key: RunKey) -> WorkflowRun:
    if isinstance(event, HistoryStarted):
        event = _with_key(event, key)
        return WorkflowRun.start(event)
    decide(RunState(), event)  # raises: a history starts with WORKFLOW_EXECUTION_STARTED
    raise AssertionError("unreachable")


def _with_key(event: HistoryStarted, key: RunKey) -> HistoryStarted:
    fields = dict(event.__dict__)
    fields["run_key"] = key
    return type(event)(**fields)


def dump_history(run: WorkflowRun, *, codec: EventCodec | None = None) -> dict[str, Any]:
    """The run's history as canonical Temporal proto3 JSON (`{"events": [...]}`)."""
    encode = (codec or EventCodec()).encode
    with gc_paused():
        return {"events": [encode(event) for event in run.history]}

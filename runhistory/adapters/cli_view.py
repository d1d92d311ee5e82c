"""`runhistory timeline | show`: a run as a picture (HTML + SVG) or as a table of its events.

Each takes a history file, or a workflow id (and run id) in a store, like `describe`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from runhistory.adapters.cli_inspect import resolve_run
from runhistory.adapters.cli_store import STORE_HELP
from runhistory.adapters.timeline_html import human, render_timeline
from runhistory.domain.errors import HistoryError
from runhistory.domain.event_base import HistoryEvent
from runhistory.domain.run import WorkflowRun

__all__ = ["add_view_commands", "event_rows"]

_sleep = time.sleep  # tests replace it

TIMELINE_EXAMPLES = """examples:
  runhistory timeline history.json -o run.html
  runhistory timeline order-123 --store sqlite:///runs.db -o run.html    # the latest run
  runhistory timeline order-123 01a200f1-a621-7823-93a0 --store sqlite:///runs.db -o - | less
then open run.html in a browser; hover a lane for its events, times and failure."""

SHOW_EXAMPLES = """examples:
  runhistory show history.json
  runhistory show order-123 --store sqlite:///runs.db --follow    # until it closes or Ctrl-C
  runhistory show history.json --json | jq -c 'select(.eventType | endswith("FAILED"))'
--json prints one JSON object per line per event (JSON Lines), also with --follow."""


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target", metavar="PATH|WORKFLOW_ID", help="a history file or a workflow id"
    )
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID", help="default: the latest run")
    parser.add_argument("--store", help=STORE_HELP)
    parser.add_argument("--namespace", default="default")


def add_view_commands(commands: Any) -> None:
    help_text = "draw the run as an HTML page: one lane per activity, timer, child, task"
    parser = commands.add_parser(
        "timeline",
        help=help_text,
        description="Draw the run like Temporal UI's timeline, as one self-contained HTML "
        "page (inline SVG and CSS; it loads nothing).",
        epilog=TIMELINE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_target(parser)
    parser.add_argument(
        "-o", "--output", default="-", metavar="FILE", help="where to write (default: stdout)"
    )
    parser.set_defaults(run=_guarded(run_timeline))

    help_text = "print the run's events as a table, with times and durations"
    parser = commands.add_parser(
        "show",
        help=help_text,
        description="Print every event: id, time since the start, type, key fields, and how "
        "long what it closes took.",
        epilog=SHOW_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_target(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.add_argument(
        "--follow",
        action="store_true",
        help="stored runs: re-read the store every second, print new events until it closes",
    )
    parser.set_defaults(run=_guarded(run_show))


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from runhistory.app import RunNotFound

        try:
            return fn(args)
        except HistoryError as e:
            event = f" event {e.event_id}:" if e.event_id is not None else ""
            print(f"error: {args.target}:{event} {e}", file=sys.stderr)
        except (RunNotFound, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
        return 1

    return run


def run_timeline(args: argparse.Namespace) -> int:
    page = render_timeline(resolve_run(args))
    if args.output == "-":
        sys.stdout.write(page)
    else:
        Path(args.output).write_text(page, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


# -- show ------------------------------------------------------------------------------------

_REFS = ("scheduled_event_id", "initiated_event_id", "accepted_event_id")


def _name(value: Any) -> str:
    return str(getattr(value, "name", "") or "")


def _fields(event: HistoryEvent) -> Iterator[tuple[str, str]]:
    """The attributes worth a glance, as (label, text)."""
    a = event.attributes
    get: Callable[[str], Any] = lambda name: getattr(a, name, None)  # noqa: E731
    if event.event_id == 1:
        yield "type", _name(get("workflow_type"))
    for label, name in (("activity", "activity_id"), ("timer", "timer_id")):
        if get(name):
            yield label, str(get(name))
    if event.event_id != 1 and get("activity_type") is not None:
        yield "type", _name(get("activity_type"))
    if get("signal_name"):
        yield "signal", str(get("signal_name"))
    if get("marker_name"):
        yield "marker", str(get("marker_name"))
    if get("workflow_id"):
        yield "workflow", str(get("workflow_id"))
    execution = get("workflow_execution") or get("external_workflow_execution")
    if getattr(execution, "workflow_id", ""):
        yield "workflow", str(execution.workflow_id)
    if event.event_id != 1 and get("workflow_type") is not None:
        yield "type", _name(get("workflow_type"))
    if get("operation"):
        yield "nexus", f"{get('endpoint')}/{get('service')}/{get('operation')}"
    update = get("protocol_instance_id") or getattr(get("meta"), "update_id", "")
    if update:
        yield "update", str(update)
    for label, name in (("sched", "scheduled_event_id"), ("init", "initiated_event_id")):
        if get(name):
            yield label, str(get(name))
    if get("started_event_id"):
        yield "started", str(get("started_event_id"))
    if get("attempt") and get("attempt") > 1:
        yield "attempt", str(get("attempt"))
    if get("start_to_fire_timeout") is not None:
        yield "fire after", str(get("start_to_fire_timeout"))
    for label, name in (("cause", "cause"), ("timeout", "timeout_type")):
        if get(name):
            yield label, _name(get(name)) or str(get(name))
    failure = get("failure") or getattr(get("outcome"), "failure", None)
    message = str(getattr(failure, "message", "") or "") if failure is not None else ""
    if message:
        yield "failure", message
    if get("reason"):
        yield "reason", str(get("reason"))


def _refs(event: HistoryEvent) -> int | None:
    a = event.attributes
    for name in _REFS:
        ref = getattr(a, name, None)
        if ref:
            return int(ref)
    if event.type_name in ("TIMER_FIRED", "TIMER_CANCELED"):
        ref = getattr(a, "started_event_id", None)
        return int(ref) if ref else None
    return None


def event_rows(events: Sequence[HistoryEvent], start_from: int = 0) -> list[dict[str, Any]]:
    """One dict per event from index `start_from` on: eventId, time, offset (ns since the first
    event), eventType, fields, and `took`: the time since the event it closes or starts (an
    activity's schedule-to-close on ACTIVITY_TASK_COMPLETED, a timer's wait on TIMER_FIRED, the
    run's whole length on its close event)."""
    by_id = {e.event_id: e for e in events}
    first = next((e.event_time for e in events if e.event_time is not None), None)
    rows = []
    for event in events[start_from:]:
        t = event.event_time
        ref = _refs(event)
        origin = by_id[ref].event_time if ref is not None and ref in by_id else None
        if event.type_name.startswith("WORKFLOW_EXECUTION_") and ref is None:
            closing = event.type_name.rsplit("_", 1)[-1] in (
                "COMPLETED", "FAILED", "CANCELED", "TERMINATED", "OUT", "NEW"
            )  # fmt: skip
            origin = first if closing and event.event_id != 1 else None
        rows.append(
            {
                "eventId": event.event_id,
                "time": str(t) if t is not None else None,
                "offset": t.total_nanos - first.total_nanos if t and first else None,
                "eventType": event.type_name,
                "fields": dict(_fields(event)),
                "took": t.total_nanos - origin.total_nanos if t and origin else None,
            }
        )
    return rows


def _cells(row: dict[str, Any]) -> tuple[str, str, str, str, str]:
    offset = "" if row["offset"] is None else "+" + human(row["offset"])
    offset = "0" if offset == "+0ns" else offset
    fields = "  ".join(f"{k}={v}" for k, v in row["fields"].items())
    took = "" if row["took"] is None else human(row["took"])
    return str(row["eventId"]), offset, row["eventType"], took, fields


def _print_plain(rows: list[dict[str, Any]], header: bool) -> None:
    if header:
        print(f"{'ID':>6}  {'TIME':>10}  {'TYPE':<44} {'TOOK':>9}  DETAILS")
    for row in rows:
        eid, offset, etype, took, fields = _cells(row)
        print(f"{eid:>6}  {offset:>10}  {etype:<44} {took:>9}  {fields}".rstrip())


def _print_rich(rows: list[dict[str, Any]], header: bool, console: Any) -> None:
    from rich.table import Table

    table = Table(box=None, show_header=header, header_style="bold", pad_edge=False)
    table.add_column("ID", justify="right", style="dim")
    table.add_column("TIME", justify="right")
    table.add_column("TYPE", no_wrap=True)
    table.add_column("TOOK", justify="right")
    table.add_column("DETAILS", overflow="fold")
    for row in rows:
        eid, offset, etype, took, fields = _cells(row)
        style = "red" if etype.endswith(("FAILED", "TIMED_OUT", "TERMINATED")) else None
        table.add_row(eid, offset, etype, took, fields, style=style)
    console.print(table)


def _printer() -> Callable[[list[dict[str, Any]], bool], None]:
    """rich when it is installed and stdout is a terminal, else plain aligned text."""
    try:
        from rich.console import Console
    except ImportError:
        return _print_plain
    if not sys.stdout.isatty():
        return _print_plain
    console = Console(highlight=False)
    return lambda rows, header: _print_rich(rows, header, console)


def _emit(run: WorkflowRun, start_from: int, as_json: bool, printer: Any, end: int) -> None:
    rows = event_rows(run.history[:end], start_from)
    if as_json:
        for row in rows:
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
    elif rows:
        printer(rows, start_from == 0)
    sys.stdout.flush()


def run_show(args: argparse.Namespace) -> int:
    stored = not (args.run_id is None and Path(args.target).exists())
    if args.follow and not stored:
        print("error: --follow needs a stored run (a workflow id and --store)", file=sys.stderr)
        return 2
    run = resolve_run(args)
    printer = _printer()
    if not args.follow:
        _emit(run, 0, args.json, printer, len(run.history))
        return 0
    if args.run_id is None and run.key is not None:
        args.run_id = run.key.run_id  # follow this run, even if a newer one starts
    shown = 0
    try:
        while True:
            # print only durable events while open: a transient task tail may be rewritten
            end = len(run.history) if run.is_closed else run.durable_length
            if end > shown:
                _emit(run, shown, args.json, printer, end)
                shown = end
            if run.is_closed:
                return 0
            _sleep(1)
            run = resolve_run(args)
    except KeyboardInterrupt:
        return 0

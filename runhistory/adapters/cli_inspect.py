"""`runhistory describe | audit | findings`: what a run is, who acted on it, what looks wrong.

Each takes a history file, or a workflow id (and run id) in a store, and prints a human view or,
with `--json`, JSON."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import orjson

from runhistory.adapters.cli_store import STORE_HELP, open_store
from runhistory.adapters.history_json import load_history
from runhistory.adapters.temporal_describe import server_describe
from runhistory.domain.errors import HistoryError
from runhistory.domain.run import WorkflowRun
from runhistory.domain.run_key import RunKey
from runhistory.domain.timeval import Timestamp
from runhistory.projections import audit, describe, findings, pending, state_transitions

__all__ = ["add_inspect_commands", "resolve_run"]

EXAMPLES = """examples:
  runhistory {cmd} history.json
  runhistory {cmd} order-123 --store sqlite:///runs.db            # the latest run
  runhistory {cmd} order-123 01a200f1-a621-7823-93a0 --store sqlite:///runs.db --json"""


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target", metavar="PATH|WORKFLOW_ID", help="a history file or a workflow id"
    )
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID", help="default: the latest run")
    parser.add_argument("--store", help=STORE_HELP)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def add_inspect_commands(commands: Any) -> None:
    for name, help_text, run in (
        (
            "describe",
            "status, pending work and state transitions, like the server's describe",
            run_describe,
        ),
        ("audit", "who did what to the run, and when", run_audit),
        (
            "findings",
            "checks for problems: limits, task failures, timeouts, lost signals",
            run_findings,
        ),
    ):
        parser = commands.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            epilog=EXAMPLES.format(cmd=name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_target(parser)
        parser.set_defaults(run=run)


def resolve_run(args: argparse.Namespace) -> WorkflowRun:
    """The run a command names: a history file, or a stored run."""
    return _resolve(args)[0]


def _resolve(args: argparse.Namespace) -> tuple[WorkflowRun, dict[str, Any] | None]:
    """The run, and the server's own describe of it when a sync stored one."""
    path = Path(args.target)
    if args.run_id is None and path.exists():
        return load_history(path), None
    app = open_store(args.store)
    if args.run_id:
        key = RunKey(args.target, args.run_id, args.namespace)
    else:
        key = app.resolve(args.target, None, args.namespace)
    run: WorkflowRun = app.get(key)
    return run, server_describe(app, key)


def _guarded(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        from runhistory.app import RunNotFound

        try:
            run, server = _resolve(args)
            args.server_describe = server
            code: int = fn(args, run)
            return code
        except HistoryError as e:
            event = f" event {e.event_id}:" if e.event_id is not None else ""
            print(f"error: {args.target}:{event} {e}", file=sys.stderr)
        except (RunNotFound, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
        return 1

    return run


def _json(value: Any) -> None:
    option = orjson.OPT_INDENT_2 | orjson.OPT_PASSTHROUGH_DATACLASS
    sys.stdout.write(orjson.dumps(value, default=_default, option=option).decode())
    sys.stdout.write("\n")


def _default(value: Any) -> Any:
    if isinstance(value, Timestamp):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(type(value).__name__)


@_guarded
def run_describe(args: argparse.Namespace, run: WorkflowRun) -> int:
    view = describe(run, server_describe=args.server_describe)
    if args.json:
        _json(view)
        return 0
    info = view["workflowExecutionInfo"]
    stc = state_transitions(run)
    status = str(info.get("status", "")).removeprefix("WORKFLOW_EXECUTION_STATUS_")
    print(f"{info['execution']['workflowId']} / {info['execution']['runId']}")
    print(f"  type            {info.get('type', {}).get('name', '')}")
    print(f"  status          {status}")
    print(f"  started         {info.get('startTime', '')}")
    if info.get("closeTime"):
        print(f"  closed          {info['closeTime']}")
    length, size = info.get("historyLength"), info.get("historySizeBytes")
    print(f"  history         {length} events, {size} bytes")
    if stc.exact:
        note = "exact"
    else:
        upper = "unbounded" if stc.upper is None else str(stc.upper)
        note = f"estimate; between {stc.lower} and {upper}"
    print(f"  transitions     {stc.value} ({note})")
    for reason in stc.reasons:
        print(f"                  - {reason}")
    server = (args.server_describe or {}).get("workflowExecutionInfo", {})
    if server.get("stateTransitionCount"):
        print(f"  server count    {server['stateTransitionCount']} (from the last sync)")
    work = pending(run)
    items = [
        *work.activities,
        *work.timers,
        *work.children,
        *work.nexus_operations,
        *work.updates,
        *work.external_signals,
        *work.external_cancels,
    ]
    if work.workflow_task is not None:
        items.append(work.workflow_task)
    print(f"  pending         {len(items) or 'nothing'}")
    for item in items:
        where = f"(event {item.event_id})"
        print(f"    {item.kind:<16} {item.key:<12} {item.name:<24} {item.state} {where}")
    return 0


@_guarded
def run_audit(args: argparse.Namespace, run: WorkflowRun) -> int:
    entries = audit(run)
    if args.json:
        _json(entries)
        return 0
    for e in entries:
        who = e.identity or "?"
        if e.principal:
            who += f" ({e.principal})"
        extra = "; ".join(
            x for x in (e.reason, e.detail, e.request_id and f"request {e.request_id}") if x
        )
        print(f"{e.event_id:>6}  {e.time or ''!s:<32} {e.action:<20} {who:<28} {extra}")
    return 0


@_guarded
def run_findings(args: argparse.Namespace, run: WorkflowRun) -> int:
    found = findings(run)
    if args.json:
        _json(found)
        return 0
    if not found:
        print("no findings")
    for f in found:
        ids = ",".join(str(i) for i in f.event_ids)
        print(f"{f.severity:<8} {f.rule:<32} events {ids or '-':<12} {f.message}")
    return 0

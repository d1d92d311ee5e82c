"""`runhistory runs`: every run in a store, from the catalog read model (caught up first).

With `--audit`, the outside actions on every run instead; with `--findings`, the findings of
every closed run. A table for people, or `--json` for one JSON object a line."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from runhistory.adapters.cli_store import STORE_HELP, open_store

__all__ = ["add_runs_commands", "run_runs"]

EXAMPLES = """examples:
  runhistory runs --store sqlite:///runs.db                   # every run, oldest first
  runhistory runs --store sqlite:///runs.db --status failed --type OrderWorkflow
  runhistory runs --store file:///srv/histories --status open --json
  runhistory runs --store postgresql://auditor@db/temporal --audit --action terminated
  runhistory runs --store sqlite:///runs.db --findings --severity error
The catalog lives beside the store (tables catalog_* in a SQL store's own database,
<dir>/catalog.db for a files store) unless --view names another database; each call first
applies what the store holds beyond it.
exit codes: 0 success (also when nothing matches), 1 the store or catalog cannot be read,
2 usage error"""

_STATUS_HELP = (
    "running, paused, completed, failed, timed_out, canceled, terminated, continued_as_new, "
    "or open / closed"
)


def add_runs_commands(commands: Any) -> None:
    """Register `runs` on an argparse sub-parsers object."""
    parser = commands.add_parser(
        "runs",
        help="list the runs of a store (or their audit trail, or findings)",
        description="List every run in a store from its catalog, caught up first.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--store", help=STORE_HELP)
    parser.add_argument(
        "--view",
        metavar="URL",
        help="catalog database: sqlite:///path or postgresql://... (default: beside the store)",
    )
    parser.add_argument("--prefix", default="catalog", help="catalog table prefix (%(default)s)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--audit", action="store_true", help="outside actions on every run")
    what.add_argument("--findings", action="store_true", help="findings of every closed run")
    parser.add_argument("--namespace", help="only this namespace")
    parser.add_argument("--workflow-id", help="only this workflow id")
    runs = parser.add_argument_group("runs")
    runs.add_argument("--status", metavar="S", help=_STATUS_HELP)
    runs.add_argument("--type", metavar="T", dest="workflow_type", help="workflow type name")
    audit = parser.add_argument_group("--audit")
    audit.add_argument("--action", help="started, signaled, terminated, reset, ...")
    audit.add_argument("--identity", help="who acted")
    found = parser.add_argument_group("--findings")
    found.add_argument("--severity", choices=("info", "warning", "error"))
    found.add_argument("--rule", help="a finding's rule id, e.g. non-determinism")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N rows")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")
    parser.add_argument(
        "--no-catch-up", action="store_true", help="read the catalog as it is, apply nothing"
    )
    parser.add_argument(
        "--derive-open",
        action="store_true",
        help="also compute transitions, size and findings of open runs (slower)",
    )
    parser.set_defaults(run=run_runs)


def run_runs(args: argparse.Namespace) -> int:
    from eventsourcing.persistence import PersistenceError

    from runhistory.projections.catalog import (
        catch_up,
        list_audit,
        list_findings,
        list_runs,
        open_view,
    )
    from runhistory.projections.catalog.queries import normalise_status

    if args.status is not None:
        try:
            normalise_status(args.status)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if args.limit is not None and args.limit < 0:
        print("error: --limit must not be negative", file=sys.stderr)
        return 2
    try:
        app = open_store(args.store)
    except ValueError as e:  # an unsupported store URL
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (PersistenceError, OSError) as e:
        print(f"error: cannot open the store: {e}", file=sys.stderr)
        return 1
    try:
        with open_view(args.view, app=app, prefix=args.prefix) as view:
            if not args.no_catch_up:
                applied = catch_up(app, view, derive_runs="all" if args.derive_open else "closed")
                if applied and sys.stderr.isatty():
                    print(f"catalog: applied {applied} new events", file=sys.stderr)
            common = {"namespace": args.namespace, "workflow_id": args.workflow_id}
            if args.audit:
                rows: Sequence[Any] = list_audit(
                    view, action=args.action, identity=args.identity, limit=args.limit, **common
                )
                _print(rows, args.json, _AUDIT_COLUMNS, "no audit entries")
            elif args.findings:
                rows = list_findings(
                    view, severity=args.severity, rule=args.rule, limit=args.limit, **common
                )
                _print(rows, args.json, _FINDING_COLUMNS, "no findings")
            else:
                rows = list_runs(
                    view,
                    status=args.status,
                    workflow_type=args.workflow_type,
                    limit=args.limit,
                    **common,
                )
                _print(rows, args.json, _RUN_COLUMNS, "no runs")
    except (PersistenceError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        app.close()
    return 0


# --- output -------------------------------------------------------------------------------------


def _time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _transitions(row: Any) -> str:
    if row.state_transitions is None:
        return ""
    return str(row.state_transitions) + ("" if row.state_transitions_exact else "~")


def _pending(row: Any) -> str:
    return str(row.pending) if row.pending else ""


def _findings(row: Any) -> str:
    if row.findings is None:
        return ""
    return f"{row.findings} ({row.worst_severity})" if row.findings else "0"


_RUN_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("NAMESPACE", lambda r: r.namespace),
    ("WORKFLOW ID", lambda r: r.workflow_id),
    ("RUN ID", lambda r: r.run_id),
    ("TYPE", lambda r: r.workflow_type or ""),
    ("STATUS", lambda r: r.status),
    ("STARTED", lambda r: _time(r.start_time)),
    ("CLOSED", lambda r: _time(r.close_time)),
    ("EVENTS", lambda r: str(r.history_length)),
    ("PENDING", _pending),
    ("TRANSITIONS", _transitions),
    ("FINDINGS", _findings),
)
_AUDIT_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("NAMESPACE", lambda a: a.namespace),
    ("WORKFLOW ID", lambda a: a.workflow_id),
    ("RUN ID", lambda a: a.run_id),
    ("EVENT", lambda a: str(a.event_id)),
    ("TIME", lambda a: _time(a.time)),
    ("ACTION", lambda a: a.action),
    ("WHO", lambda a: a.identity + (f" ({a.principal})" if a.principal else "")),
    (
        "DETAIL",
        lambda a: "; ".join(
            x for x in (a.reason, a.detail, a.request_id and f"request {a.request_id}") if x
        ),
    ),
)
_FINDING_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("NAMESPACE", lambda f: f.namespace),
    ("WORKFLOW ID", lambda f: f.workflow_id),
    ("RUN ID", lambda f: f.run_id),
    ("SEVERITY", lambda f: f.severity),
    ("RULE", lambda f: f.rule),
    ("EVENTS", lambda f: ",".join(str(i) for i in f.event_ids) or "-"),
    ("MESSAGE", lambda f: f.message),
)


def _print(
    rows: Sequence[Any], as_json: bool, columns: tuple[tuple[str, Any], ...], empty: str
) -> None:
    if as_json:
        out = sys.stdout
        for row in rows:
            out.write(orjson.dumps(_json_row(row)).decode() + "\n")
        return
    if not rows:
        print(empty)
        return
    if all(getattr(row, "namespace", "default") == "default" for row in rows):
        columns = columns[1:]  # one namespace: no need to say it on every line
    table = [[heading for heading, _ in columns]]
    table += [[str(cell(row)) for _, cell in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        cells = [text.ljust(width) for text, width in zip(line, widths, strict=True)]
        print("  ".join(cells).rstrip())


def _json_row(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in dataclasses.fields(row):
        value = getattr(row, field.name)
        out[field.name] = _time(value) if isinstance(value, datetime) else value
    return out

"""`runhistory import` and `runhistory export`: histories into and out of a store."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from runhistory.adapters.cli_validate import LIMITS_HELP, limits_arg
from runhistory.domain.errors import HistoryError

__all__ = ["add_store_commands", "open_store"]

STORE_HELP = (
    "store URL: sqlite:///path, postgresql://..., file:///dir or memory://"
    " (default: $RUNHISTORY_STORE, else sqlite:///runhistory.db)"
)

IMPORT_EXAMPLES = """examples:
  runhistory import exports/*.json --store sqlite:///runs.db
  runhistory import /var/temporal/archival/ --store sqlite:///runs.db   # filestore archival
  runhistory import cloud-export.bin --store sqlite:///runs.db   # Cloud export (temporal extra)
  RUNHISTORY_STORE=postgresql://postgres@127.0.0.1/test runhistory import h.json
  runhistory import big.json --limits none   # a server whose dynamic config raised its limits
exit codes: 0 all imported, 1 some file failed (the others are still imported), 2 usage error"""

EXPORT_EXAMPLES = """examples:
  runhistory export order-123 --store sqlite:///runs.db -o order-123.json
  runhistory export order-123 01a200f1-a621-7823-93a0-3f872093f391"""


def open_store(url: str | None) -> Any:
    from runhistory.app import RunHistory

    return RunHistory.open(url)


def add_store_commands(commands: Any) -> None:
    imp = commands.add_parser(
        "import",
        help="validate histories and store them",
        epilog=IMPORT_EXAMPLES,
        description="Validate each history and store it; importing again changes nothing.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="history JSON files, Temporal archive files or directories",
    )
    imp.add_argument("--store", help=STORE_HELP)
    imp.add_argument("--namespace", default="default", help="Temporal namespace of the runs")
    imp.add_argument("--lenient", action="store_true", help="keep unknown event types as opaque")
    imp.add_argument("--limits", type=limits_arg, metavar="SPEC", help=LIMITS_HELP)
    imp.add_argument("--json", action="store_true", help="one JSON object per file")
    imp.set_defaults(run=run_import)

    exp = commands.add_parser(
        "export",
        help="write a stored run as Temporal JSON",
        epilog=EXPORT_EXAMPLES,
        description="Write a stored run as canonical Temporal history JSON, as it was imported.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exp.add_argument("workflow_id", metavar="WORKFLOW_ID")
    exp.add_argument("run_id", nargs="?", metavar="RUN_ID", help="default: the latest run")
    exp.add_argument("--store", help=STORE_HELP)
    exp.add_argument("--namespace", default="default")
    exp.add_argument("-o", "--output", help="file to write (default: standard output)")
    exp.set_defaults(run=run_export)


def _progress(done: int, total: int) -> None:
    if total > 1 and sys.stderr.isatty():
        width = 30
        filled = width * done // total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _sources(path: str) -> Iterator[tuple[str, Any]]:
    """(label, source) of each history a PATH names: a history file as it is, or every history
    in a Temporal archive (a filestore `.history` file, a Cloud export file, a directory)."""
    file = Path(path)
    if file.is_file() and file.name.endswith((".json", ".json.gz")):
        yield path, file
        return
    from runhistory.adapters.archive import iter_archive

    for found in iter_archive(file):
        yield f"{found.path}#{found.index}", found.history


def run_import(args: argparse.Namespace) -> int:
    app = open_store(args.store)
    counts = {"imported": 0, "unchanged": 0, "failed": 0, "appended": 0}
    for i, path in enumerate(args.paths, 1):
        try:
            for label, source in _sources(path):
                _import_one(app, args, label, source, counts)
        except (HistoryError, OSError) as e:  # an unreadable archive
            _report_failure(args, path, e, counts)
        _progress(i, len(args.paths))
    if not args.json:
        print(
            f"{counts['imported']} imported ({counts['appended']} events),"
            f" {counts['unchanged']} already stored, {counts['failed']} failed"
        )
    return 1 if counts["failed"] else 0


def _import_one(
    app: Any, args: argparse.Namespace, label: str, source: Any, counts: dict[str, int]
) -> None:
    try:
        result = app.import_history(
            source, namespace=args.namespace, strict=not args.lenient, limits=args.limits
        )
    except (HistoryError, OSError) as e:
        _report_failure(args, label, e, counts)
        return
    counts["appended"] += result.appended
    counts["imported" if result.appended else "unchanged"] += 1
    if args.json:
        report = {
            "path": label,
            "imported": True,
            "workflowId": result.key.workflow_id,
            "runId": result.key.run_id,
            "events": result.events,
            "appended": result.appended,
        }
        print(orjson.dumps(report).decode())


def _report_failure(
    args: argparse.Namespace, label: str, error: Exception, counts: dict[str, int]
) -> None:
    counts["failed"] += 1
    if args.json:
        print(orjson.dumps({"path": label, "imported": False, "error": str(error)}).decode())
        return
    event = ""
    if isinstance(error, HistoryError) and error.event_id:
        event = f" event {error.event_id}"
    print(f"error: {label}:{event} {error}", file=sys.stderr)


def run_export(args: argparse.Namespace) -> int:
    from runhistory.app import RunNotFound

    app = open_store(args.store)
    try:
        doc = app.export(args.workflow_id, args.run_id, args.namespace)
    except RunNotFound as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    if args.output:
        Path(args.output).write_bytes(text)
    else:
        sys.stdout.buffer.write(text)
    return 0

"""`runhistory sync`: pull runs from a live Temporal server into a store (and follow them)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from runhistory.adapters.cli_validate import LIMITS_HELP, limits_arg

if TYPE_CHECKING:
    from runhistory.adapters.temporal_sync import RunOutcome, SyncReport

__all__ = ["add_sync", "run_sync"]

STORE_HELP = (
    "store URL: sqlite:///path (default ./runhistory.db), postgresql://..., file:///dir, "
    "memory://; default $RUNHISTORY_STORE"
)

EXAMPLES = """examples:
  runhistory sync --address localhost:7233 --store sqlite:///runs.db
  runhistory sync --namespace orders --query "WorkflowType = 'Checkout'"
  runhistory sync --query "ExecutionStatus = 'Running'" --follow      # tail open runs; Ctrl-C stops
  runhistory sync --json | jq -c 'select(.type == "run" and .appended > 0)'
  runhistory sync --limits none      # a server whose dynamic config raised its limits
what is stored: each run's history, exactly as the server returns it, and the server's latest
DescribeWorkflowExecution beside it. Syncing again appends only new events; runs stored closed
are not read again.
exit codes: 0 every run synced, 1 some run failed (the others are stored) or the server could
not be reached, 2 usage error (bad option, store URL or visibility query), 130 a sync without
--follow interrupted by Ctrl-C"""


def add_sync(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `runhistory sync` on the CLI's subcommands."""
    parser = commands.add_parser(
        "sync",
        help="pull runs and their describe from a Temporal server; --follow tails open runs",
        description=(
            "Store every run a visibility query lists, with the server's describe, in a store; "
            "with --follow, keep appending the events of open runs as the server writes them."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--address", default=os.environ.get("TEMPORAL_ADDRESS") or "localhost:7233",
        metavar="HOST:PORT", help="Temporal frontend (default $TEMPORAL_ADDRESS or localhost:7233)",
    )  # fmt: skip
    parser.add_argument(
        "--namespace", default=os.environ.get("TEMPORAL_NAMESPACE") or "default",
        metavar="NS", help="namespace (default $TEMPORAL_NAMESPACE or default)",
    )  # fmt: skip
    parser.add_argument("--store", metavar="URL", help=STORE_HELP)
    parser.add_argument(
        "--query", metavar="VISIBILITY_QUERY",
        help="list filter, e.g. \"WorkflowType = 'Checkout'\" (default: every run)",
    )  # fmt: skip
    parser.add_argument("--follow", action="store_true", help="keep tailing open runs until Ctrl-C")
    parser.add_argument(
        "--relist", type=float, default=10.0, metavar="SECONDS",
        help="with --follow: look for new runs this often; 0 follows only the first listing's "
        "open runs and exits when they have closed (default 10)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--lenient", action="store_true", help="keep unknown event types as opaque")
    parser.add_argument("--limits", type=limits_arg, metavar="SPEC", help=LIMITS_HELP)
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument(
        "--api-key", default=os.environ.get("TEMPORAL_API_KEY"),
        help="API key (default $TEMPORAL_API_KEY; implies --tls)",
    )  # fmt: skip
    parser.set_defaults(run=run_sync)


def run_sync(args: argparse.Namespace) -> int:
    try:
        from runhistory.adapters.temporal_sync import SyncError, sync
    except ImportError as e:  # MissingTemporalExtra says what to install
        return _error(str(e), 1)
    from runhistory.app import RunHistory

    if args.relist < 0:
        return _error("--relist must be 0 or more seconds", 2)
    try:
        app = RunHistory.open(args.store)
    except ValueError as e:
        return _error(str(e), 2)
    printer = _Printer(args.json, sys.stdout, sys.stderr)
    stop = threading.Event()
    try:
        with _stop_on_interrupt(stop):
            report = sync(
                app, address=args.address, namespace=args.namespace, query=args.query,
                follow=args.follow, stop=stop, progress=printer.progress,
                strict=not args.lenient, tls=args.tls or bool(args.api_key),
                api_key=args.api_key or None, relist_interval=args.relist or None,
                limits=args.limits,
            )  # fmt: skip
    except SyncError as e:
        printer.clear()
        return _error(str(e), 2 if e.usage else 1)
    printer.summary(report, interrupted=stop.is_set())
    if stop.is_set() and not args.follow:
        return 130
    return 0 if report.ok else 1


def _error(message: str, code: int) -> int:
    print(f"runhistory sync: error: {' '.join(message.split())}", file=sys.stderr)
    return code


@contextmanager
def _stop_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C sets `stop` (the sync ends cleanly); a second one interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Printer:
    """Per-run lines (JSON, or a line for each run that changed or failed), a summary, and a
    progress line on stderr when it is a terminal."""

    def __init__(self, json: bool, out: TextIO, err: TextIO) -> None:
        self.json = json
        self.out = out
        self.err = err
        self.tty = err.isatty()
        self._progress_shown = False

    def progress(self, outcome: RunOutcome, report: SyncReport) -> None:
        self.clear()
        if outcome.status == "failed":
            print(f"runhistory sync: error: {outcome.key}: {outcome.error}", file=self.err)
        if self.json:
            self._write(self.out, {"type": "run", **outcome.to_json()})
        elif outcome.status not in ("unchanged", "failed"):
            added = "new" if outcome.status == "new" else f"+{outcome.appended}"
            print(f"{added:<6} {outcome.key}: {outcome.events} events", file=self.out)
        self.out.flush()
        if self.tty:
            following = f", following {report.following}" if report.following else ""
            self.err.write(
                f"\rsync: {report.runs_seen} runs, {report.runs_new} new, "
                f"{report.events_appended} events appended, {len(report.failures)} failed"
                f"{following}"
            )
            self.err.flush()
            self._progress_shown = True

    def clear(self) -> None:
        if self._progress_shown:
            self.err.write("\r\033[K")
            self.err.flush()
            self._progress_shown = False

    def summary(self, report: SyncReport, *, interrupted: bool) -> None:
        self.clear()
        if self.json:
            self._write(self.out, {"type": "summary", **report.to_json(), "stopped": interrupted})
            return
        print(
            f"{report.runs_seen} runs seen: {report.runs_new} new, {report.runs_updated} updated "
            f"({report.events_appended} events appended), {len(report.failures)} failed"
            + (" (stopped)" if interrupted else ""),
            file=self.out,
        )

    @staticmethod
    def _write(stream: TextIO, doc: dict[str, Any]) -> None:
        stream.write(orjson.dumps(doc).decode() + "\n")

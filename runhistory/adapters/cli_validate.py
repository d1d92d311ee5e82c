"""`runhistory validate PATH...`: is each file a history a Temporal server could have written?"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from runhistory.adapters.history_json import events_of, load_history, parse_history_json
from runhistory.domain.errors import HistoryError, InvalidHistory
from runhistory.domain.limits import HistoryLimits

__all__ = ["LIMITS_HELP", "add_validate", "limits_arg", "validate_file"]

LIMITS_HELP = (
    "Temporal limits to enforce: 'temporal' (default in strict mode: ids <= 1000 bytes,"
    " payload fields <= 2 MiB, <= 51200 events, <= 50 MiB), 'none', or overrides such as"
    " 'max_events=100000,max_payload_bytes=none' (max_id_length, max_payload_bytes,"
    " max_events, max_history_bytes); --lenient alone enforces none"
)


def limits_arg(spec: str) -> HistoryLimits:
    """argparse type of `--limits`: a usage error (exit 2) names what is wrong."""
    try:
        return HistoryLimits.parse(spec)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


EXAMPLES = """examples:
  runhistory validate history.json
  runhistory validate --json --collect-all a.json b.json    # one JSON object per line
  runhistory validate --lenient old-export.json             # keep unknown event types
  runhistory validate --limits max_events=100000 big.json   # a server with raised limits
exit codes: 0 every file is valid, 1 some file is not, 2 usage error"""


def add_validate(commands: Any) -> None:
    parser = commands.add_parser(
        "validate",
        help="check histories against Temporal's legal event order",
        description="Check that each file is a history a Temporal server could have written.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="history JSON files (.json, .json.gz)"
    )
    parser.add_argument("--json", action="store_true", help="one compact JSON object per file")
    parser.add_argument("--lenient", action="store_true", help="keep unknown event types as opaque")
    parser.add_argument(
        "--collect-all", action="store_true", help="report every problem, not the first"
    )
    parser.add_argument("--workflow-id", help="workflow id for old histories that lack one")
    parser.add_argument("--limits", type=limits_arg, metavar="SPEC", help=LIMITS_HELP)
    parser.set_defaults(run=run_validate)


def validate_file(
    path: str,
    *,
    lenient: bool = False,
    collect_all: bool = False,
    workflow_id: str | None = None,
    limits: HistoryLimits | None = None,
) -> dict[str, Any]:
    """The `--json` report of one file. `limits` as for `load_history`."""
    report: dict[str, Any] = {
        "path": path,
        "valid": False,
        "workflowId": None,
        "runId": None,
        "events": 0,
        "errors": [],
    }
    try:
        doc = parse_history_json(path)
        report["events"] = len(events_of(doc))
        run = load_history(
            doc,
            strict=not lenient,
            collect_all=collect_all,
            workflow_id=workflow_id,
            limits=limits,
        )
    except InvalidHistory as e:
        report["errors"] = [_error(x) for x in e.errors]
    except HistoryError as e:
        report["errors"] = [_error(e)]
    except OSError as e:
        report["errors"] = [
            {
                "eventId": None,
                "eventType": None,
                "code": "unreadable",
                "message": f"{type(e).__name__}: {e.strerror or e}",
            }
        ]
    else:
        report["valid"] = True
        if run.key is not None:
            report["workflowId"], report["runId"] = run.key.workflow_id, run.key.run_id
    return report


def _error(e: HistoryError) -> dict[str, Any]:
    return {"eventId": e.event_id, "eventType": e.event_type, "code": e.code, "message": str(e)}


def run_validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.paths:
        report = validate_file(
            path,
            lenient=args.lenient,
            collect_all=args.collect_all,
            workflow_id=args.workflow_id,
            limits=args.limits,
        )
        failed += not report["valid"]
        if args.json:
            sys.stdout.write(orjson.dumps(report).decode() + "\n")
        elif report["valid"]:
            run = f"{report['workflowId']} / {report['runId']}"
            print(f"ok       {path}: {run}, {report['events']} events")
        else:
            for error in report["errors"]:
                where = (
                    f"event {error['eventId']} {error['eventType']}" if error["eventId"] else "file"
                )
                message = error["message"]
                # a HistoryError's message already starts with its event; say it once
                line = message if message.startswith(f"{where}:") else f"{where}: {message}"
                print(f"INVALID  {path}: {line}")
    return 1 if failed else 0

"""`runhistory validate PATH...`: is each file a history a Temporal server could have written?"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from runhistory.adapters.history_json import events_of, load_history, parse_history_json
from runhistory.domain.errors import HistoryError, InvalidHistory

__all__ = ["add_validate", "validate_file"]

EXAMPLES = """examples:
  runhistory validate history.json
  runhistory validate --json --collect-all a.json b.json    # one JSON object per line
  runhistory validate --lenient old-export.json             # keep unknown event types
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
    parser.set_defaults(run=run_validate)


def validate_file(
    path: str, *, lenient: bool = False, collect_all: bool = False, workflow_id: str | None = None
) -> dict[str, Any]:
    """The `--json` report of one file."""
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
            doc, strict=not lenient, collect_all=collect_all, workflow_id=workflow_id
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
            path, lenient=args.lenient, collect_all=args.collect_all, workflow_id=args.workflow_id
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
                print(f"INVALID  {path}: {where}: {error['message']}")
    return 1 if failed else 0

"""The `runhistory` command line. Exit codes: 0 all good, 1 a history is invalid, 2 usage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from runhistory.adapters.cli_inspect import add_inspect_commands
from runhistory.adapters.cli_runs import add_runs_commands
from runhistory.adapters.cli_store import add_store_commands
from runhistory.adapters.cli_sync import add_sync
from runhistory.adapters.cli_validate import add_validate
from runhistory.adapters.cli_view import add_view_commands

__all__ = ["main"]

EXAMPLES = """examples:
  runhistory validate history.json
  runhistory validate --json --collect-all exports/*.json
  runhistory import exports/*.json --store sqlite:///runs.db
  runhistory export my-workflow-id --store sqlite:///runs.db -o history.json
  runhistory describe my-workflow-id --store sqlite:///runs.db
  runhistory runs --store sqlite:///runs.db --status failed
  runhistory show history.json
  runhistory timeline my-workflow-id --store sqlite:///runs.db -o run.html
  runhistory sync --address localhost:7233 --store sqlite:///runs.db --follow
exit codes: 0 success, 1 a history is invalid or a run was not found, 2 usage error
"""


def _version() -> str:
    try:
        return version("runhistory")
    except PackageNotFoundError:  # running from a source tree
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runhistory",
        description="Store, validate and analyse Temporal workflow-run histories.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"runhistory {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_validate(commands)
    add_store_commands(commands)
    add_inspect_commands(commands)
    add_runs_commands(commands)
    add_view_commands(commands)
    add_sync(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

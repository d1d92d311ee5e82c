"""A child process for the crash harness: `python -m tests.reliability.import_worker URL FILE...`
imports each file with one `import_history` call and prints `done <workflow id>` after each
returns (the parent kills it with SIGKILL at a moment of its choosing)."""

from __future__ import annotations

import sys

from runhistory.app import RunHistory


def main(argv: list[str]) -> int:
    url, paths = argv[0], argv[1:]
    app = RunHistory.open(url)  # the table prefix, if any, comes from the environment
    print("open", flush=True)
    for path in paths:
        result = app.import_history(path)
        print(f"done {result.key.workflow_id}", flush=True)
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

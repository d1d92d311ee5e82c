"""Crash safety: a writer SIGKILLed at a random moment leaves every run absent or whole.

A child process imports renamed copies of real histories (one `import_history` per run, either
through the Python API or the real `runhistory import` CLI) into a SQLite file, a files store or
PostgreSQL, and the parent kills it with SIGKILL after a random number of runs plus a random
jitter, so kills land before, inside and after commits. After each kill the parent reopens the
store and checks that no event is recorded twice, that every run is absent or exports equal to
its source, that every run the child reported done is stored (a returned import is durable),
and that importing everything again completes the rest; at the end a second re-import appends
nothing. Short form: 4 kills of 20-run imports per store. `RUNHISTORY_LONG=1`: 50 kills of
200-run imports. `RUNHISTORY_CRASH_KILLS` / `RUNHISTORY_CRASH_RUNS` override the counts and
`RUNHISTORY_SEED` fixes the random choices (the seed is printed).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.reliability.support import (
    ROOT,
    STORE_KINDS,
    Store,
    check_store,
    long_or_short,
    open_store,
    renamed,
    small_histories,
)

KILLS = long_or_short(50, 4, "RUNHISTORY_CRASH_KILLS")
RUNS = long_or_short(200, 20, "RUNHISTORY_CRASH_RUNS")
CLI = ROOT / ".venv" / "bin" / "runhistory"


def _command(store: Store, paths: list[Path], cli: bool) -> list[str]:
    files = [str(p) for p in paths]
    if cli:
        return [str(CLI), "import", "--json", "--store", store.url, *files]
    return [sys.executable, "-m", "tests.reliability.import_worker", store.url, *files]


def _is_done(line: str, cli: bool) -> bool:
    if cli:
        return line.startswith("{") and bool(orjson.loads(line).get("imported"))
    return line.startswith("done ")


def _run_and_kill(
    store: Store, paths: list[Path], cli: bool, rng: random.Random
) -> tuple[int, int]:
    """Start the writer, SIGKILL it after a random number of finished runs plus a jitter.
    Returns (runs it reported done, the random target)."""
    target = rng.randrange(0, len(paths))
    child = subprocess.Popen(
        _command(store, paths, cli),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=store.process_env(),
        cwd=ROOT,
        text=True,
    )
    assert child.stdout is not None
    done = 0
    try:
        while done < target:
            line = child.stdout.readline()
            if not line:
                break
            done += _is_done(line, cli)
        time.sleep(rng.uniform(0.0, 0.04))
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    done += sum(_is_done(line, cli) for line in rest.splitlines())
    return done, target


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_sigkilled_imports_leave_every_run_absent_or_whole(kind: str, tmp_path: Path) -> None:
    seed = int(os.environ.get("RUNHISTORY_SEED") or time.time_ns() % 1_000_000)
    print(f"RUNHISTORY_SEED={seed} kind={kind} kills={KILLS} runs={RUNS}")
    rng = random.Random(seed)
    histories = small_histories()
    every: list[dict[str, Any]] = []
    killed_mid_run = 0
    with open_store(kind) as store:
        for cycle in range(KILLS):
            cli = cycle % 5 == 0  # the real CLI on the first kill and every fifth one
            folder = tmp_path / f"cycle-{cycle}"
            folder.mkdir()
            docs, paths = [], []
            for i in range(RUNS):
                label, raw = histories[rng.randrange(len(histories))]
                doc = renamed(raw, f"crash-{cycle}-{i}-{label}")
                path = folder / f"{i:04d}.json"
                path.write_bytes(orjson.dumps(doc))
                docs.append(doc)
                paths.append(path)
            every.extend(docs)
            done, target = _run_and_kill(store, paths, cli, rng)
            context = f"seed {seed}, cycle {cycle}, cli={cli}, target {target}, done {done}"

            app = store.open()
            try:
                complete, absent = check_store(app, docs)
                assert complete + absent == len(docs), context
                # a run whose import returned is durable; at most the one in flight is extra
                assert done <= complete <= done + 1, f"{context}: {complete} complete"
                killed_mid_run += done < len(docs)
                for doc in docs:
                    app.import_history(doc)
                assert check_store(app, docs) == (len(docs), 0), context
            finally:
                app.close()

        app = store.open()
        try:
            appended = [app.import_history(doc).appended for doc in docs]
            assert appended == [0] * len(docs), "a second re-import appends nothing"
            assert check_store(app, every) == (len(every), 0)
            assert len(app.runs()) == len(every)
        finally:
            app.close()
    assert killed_mid_run >= 1, "at least one kill interrupted the import"

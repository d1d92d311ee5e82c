"""load_history / dump_history on the real 50,132-event history, beside temporalio and the
bare JSON parse; peak RSS of a load in a fresh process."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from bench.harness import Figure, Suite, median_seconds
from runhistory import dump_history, load_history

# The peak is read from VmHWM: ru_maxrss survives exec, so a child forked from a big benchmark
# process would report the parent's size.
LOAD_RSS_SCRIPT = """
import gzip, sys
def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
with gzip.open(sys.argv[1]) as f:
    size = sum(len(chunk) for chunk in iter(lambda: f.read(1 << 20), b""))
import runhistory, runhistory.adapters.history_json
before = peak_kib()
if sys.argv[2] == "load":
    run = runhistory.load_history(sys.argv[1])
print(size, before, peak_kib())
"""


def _peak_rss(path: Path, mode: str) -> tuple[int, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", LOAD_RSS_SCRIPT, str(path), mode],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    size, before, after = (int(x) for x in out)
    return size, before * 1024, after * 1024


def run(suite: Suite, path: Path, *, limit: int | None = None) -> None:
    """With `limit`, only the first `limit` events (a legal prefix): the quick smoke run."""
    raw = gzip.decompress(path.read_bytes())
    if limit is not None:
        head: dict[str, Any] = orjson.loads(raw)
        raw = orjson.dumps({"events": head["events"][:limit]})
    try:
        from temporalio.client import WorkflowHistory
    except ImportError:  # pragma: no cover - the dev extra installs it
        print("temporalio not installed: pip install 'runhistory[temporal]' for the anchors")
        return
    doc: dict[str, Any] = orjson.loads(raw)
    label = (
        f"{len(doc['events']) // 1000}k" if limit is None else f"{len(doc['events'])}-event prefix"
    )
    text = raw.decode()

    parse = median_seconds(lambda: orjson.loads(raw), repeats=suite.repeats)
    load = median_seconds(lambda: load_history(raw), repeats=suite.repeats)
    temporal = median_seconds(
        lambda: WorkflowHistory.from_json("bench", text), repeats=suite.repeats
    )
    suite.add(
        f"load_history {label} vs temporalio from_json",
        Figure(load, "s", "temporalio WorkflowHistory.from_json", temporal),
    )
    suite.add(
        f"load_history {label} vs bare orjson parse (floor)",
        Figure(load, "s", "orjson.loads", parse),
    )

    run_ = load_history(doc)
    history = WorkflowHistory.from_json("bench", doc)
    dump = median_seconds(lambda: dump_history(run_), repeats=suite.repeats)
    to_json = median_seconds(history.to_json, repeats=suite.repeats)
    suite.add(
        f"dump_history {label} vs temporalio to_json",
        Figure(dump, "s", "temporalio WorkflowHistory.to_json", to_json),
    )
    dumps = median_seconds(lambda: json.dumps(doc), repeats=suite.repeats)
    suite.add(
        f"dump_history {label} vs json.dumps of the same dict",
        Figure(dump, "s", "json.dumps", dumps),
    )

    if limit is not None:
        return  # peak RSS is only meaningful on the whole file
    size, base, peak = _peak_rss(path, "load")
    suite.add(
        "peak RSS of load_history 50k vs JSON size",
        Figure(
            peak / 2**20,
            "MiB",
            "JSON size",
            size / 2**20,
            note=f"process RSS before loading {base / 2**20:.1f} MiB; "
            f"increase {(peak - base) / 2**20:.1f} MiB",
        ),
    )

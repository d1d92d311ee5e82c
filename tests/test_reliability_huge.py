"""Huge input: a history file of a million events (over 100 MB) is refused by strict mode as soon
as it is certainly past Temporal's 51,200-event limit, reading only the events up to there, so
memory stays bounded by the limit and not by the file; lenient mode with the limits switched off
reads it event by event as well (checked on a 150,000-event prefix: memory grows with the run it
decodes, not with the file's text).

The loads run in a child process so that its peak resident memory is its own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

MIB = 1024 * 1024
MILLION = 1_000_000
SIGNALS = Path(__file__).resolve().parent.parent / "examples" / "signals_many_batched.json"


def _events(count: int) -> Iterator[bytes]:
    """Started, one workflow task scheduled (no worker ever starts it), then signals, each in a
    transaction of its own: a legal open run of `count` events."""
    recorded = json.loads(SIGNALS.read_text())["events"]
    started, scheduled, signal = recorded[0], recorded[1], recorded[2]
    task_id = 1_000
    for event_id in range(1, count + 1):
        template = started if event_id == 1 else scheduled if event_id == 2 else signal
        event = {**template, "eventId": str(event_id), "taskId": str(task_id)}
        task_id += 1 if event_id == 1 else 2  # 1-2 share a transaction, the signals do not
        yield json.dumps(event, separators=(",", ":")).encode()


def _write(path: Path, count: int) -> Path:
    with path.open("wb") as out:
        out.write(b'{"events":[')
        for index, event in enumerate(_events(count)):
            out.write(event if index == 0 else b"," + event)
        out.write(b"]}")
    return path


_CHILD = """
import json, sys
from runhistory.adapters.history_json import load_history
from runhistory.domain.errors import HistoryError
from runhistory.domain.limits import NO_LIMITS
path, mode = sys.argv[1], sys.argv[2]
try:
    if mode == "strict":
        run = load_history(path)
    else:
        run = load_history(path, strict=False, limits=NO_LIMITS)
    outcome = {"events": len(run.history)}
except HistoryError as error:
    outcome = {"error": type(error).__name__, "event_id": error.event_id, "message": str(error)}
# VmHWM, not getrusage: ru_maxrss keeps the parent's peak across fork and exec
with open("/proc/self/status") as status:
    hwm = next(line for line in status if line.startswith("VmHWM:"))
outcome["peak_mib"] = int(hwm.split()[1]) / 1024
print(json.dumps(outcome))
"""


def _load_in_child(path: Path, mode: str) -> dict[str, object]:
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc/self/status to read the child's peak memory")
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), mode],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    outcome: dict[str, object] = json.loads(done.stdout)
    return outcome


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("huge") / "million.json", MILLION)


def test_a_million_event_file_over_100_mb_is_refused_at_the_count_limit(million: Path) -> None:
    assert million.stat().st_size > 100 * MIB
    outcome = _load_in_child(million, "strict")
    assert outcome["error"] == "LimitExceeded", outcome
    # 51,200 events, the crossing transaction (event 51,201), one more (51,202): refused at the
    # first event of the second transaction after the limit
    assert outcome["event_id"] == 51_203
    assert "limit.historyCount.error" in str(outcome["message"])
    # a whole million events would take well over a gigabyte decoded (the 50,132-event bench
    # history peaks near 90 MiB); reading stopped at the limit
    peak = outcome["peak_mib"]
    assert isinstance(peak, float) and peak < 400, outcome


def test_collect_all_mode_stops_reading_at_the_count_limit_too(million: Path) -> None:
    from runhistory.adapters.history_json import load_history
    from runhistory.domain.errors import InvalidHistory, LimitExceeded

    with pytest.raises(InvalidHistory) as raised:
        load_history(million, collect_all=True)
    (error,) = raised.value.errors
    assert isinstance(error, LimitExceeded) and error.event_id == 51_203


def test_without_limits_a_long_file_is_streamed_not_parsed_whole(tmp_path: Path) -> None:
    path = _write(tmp_path / "long.json", 150_000)
    size_mib = path.stat().st_size / MIB
    outcome = _load_in_child(path, "lenient")
    assert outcome.get("events") == 150_000, outcome
    peak = outcome["peak_mib"]
    # a whole-text parse would hold the text and its parsed tree (several times the file) on top
    # of the decoded run; streaming holds the run and a small read buffer
    assert isinstance(peak, float) and peak < 3 * size_mib + 150, (peak, size_mib)

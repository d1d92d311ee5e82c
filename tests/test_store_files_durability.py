"""Crashes and damage never leave half a batch: torn lines, uncommitted lines, a writer killed
mid-insert or an I/O error are rolled back, and damage to committed data is refused, not hidden."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from eventsourcing.persistence import JSONTranscoder, OperationalError, StoredEvent

from runhistory.adapters.history_json import load_history
from runhistory.adapters.mapper import HistoryMapper
from runhistory.stores.files import FileApplicationRecorder
from runhistory.stores.files import store as store_module
from tests.conformance_data import CONFORMANCE

REPO = Path(__file__).resolve().parent.parent


def history_events(scenario: str) -> list[StoredEvent]:
    """The stored events of a real recorded run, as the HistoryMapper writes them."""
    run = load_history(CONFORMANCE / scenario / "history.json")
    mapper = HistoryMapper(transcoder=JSONTranscoder())
    return [mapper.to_stored_event(e) for e in run.collect_events()]


def generic_events(originator_id: UUID, first: int, count: int) -> list[StoredEvent]:
    pad = "x" * 3000  # big enough that a kill often lands mid-write
    return [
        StoredEvent(originator_id, v, "topic", orjson.dumps({"v": v, "pad": pad}))
        for v in range(first, first + count)
    ]


def run_child(function: Callable[..., None], *args: str) -> subprocess.Popen[str]:
    """Run the module-level `function(*args)` in a fresh Python process."""
    name = function.__name__
    code = f"import sys; from {function.__module__} import {name}; {name}(*sys.argv[1:])"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def only_file(root: Path, pattern: str) -> Path:
    (path,) = root.glob(pattern)
    return path


def test_a_torn_last_line_is_cut_off_when_the_store_opens(tmp_path: Path) -> None:
    events = history_events("activity_heartbeat")
    FileApplicationRecorder(tmp_path).insert_events(events[:5])
    run_file = only_file(tmp_path, "runs/*/*/*.jsonl")
    committed = run_file.stat().st_size
    with run_file.open("ab") as f:
        f.write(events[5].state[:40])  # a crash mid-write: half a line, no newline

    recorder = FileApplicationRecorder(tmp_path)
    assert run_file.stat().st_size == committed
    assert recorder.select_events(events[0].originator_id) == events[:5]
    recorder.insert_events(events[5:])
    assert recorder.select_events(events[0].originator_id) == events


def test_whole_lines_without_a_commit_are_rolled_back(tmp_path: Path) -> None:
    events = history_events("activity_heartbeat")
    FileApplicationRecorder(tmp_path).insert_events(events[:5])
    run_file = only_file(tmp_path, "runs/*/*/*.jsonl")
    committed = run_file.stat().st_size
    with run_file.open("ab") as f:  # the batch's data written, its commit line never
        f.write(events[5].state + b"\n" + events[6].state + b"\n")

    recorder = FileApplicationRecorder(tmp_path)
    assert run_file.stat().st_size == committed
    assert recorder.max_notification_id() == 5
    assert recorder.select_events(events[0].originator_id) == events[:5]


def test_a_torn_commit_log_is_rolled_back_with_the_files_its_intent_names(
    tmp_path: Path,
) -> None:
    events = history_events("activity_heartbeat")
    FileApplicationRecorder(tmp_path).insert_events(events[:5])
    run_file = only_file(tmp_path, "runs/*/*/*.jsonl")
    log = tmp_path / "notifications.jsonl"
    sizes = run_file.stat().st_size, log.stat().st_size
    relative = run_file.relative_to(tmp_path).as_posix()
    with log.open("ab") as f:
        f.write(orjson.dumps({"begin": 2, "files": {relative: sizes[0]}}) + b'\n{"id":6,')
    with run_file.open("ab") as f:
        f.write(events[5].state + b"\n")

    recorder = FileApplicationRecorder(tmp_path)
    assert (run_file.stat().st_size, log.stat().st_size) == sizes
    assert recorder.select_events(events[0].originator_id) == events[:5]


def test_a_commit_line_that_outlived_the_lines_before_it_is_still_a_torn_write(
    tmp_path: Path,
) -> None:
    events = history_events("activity_heartbeat")
    recorder = FileApplicationRecorder(tmp_path)
    recorder.insert_events(events[:5])
    run_file = only_file(tmp_path, "runs/*/*/*.jsonl")
    log = tmp_path / "notifications.jsonl"
    sizes = run_file.stat().st_size, log.stat().st_size
    recorder.insert_events(events[5:])
    # A crash during the log's fsync that kept the last page (the commit) but not the one
    # before it (the intent and entries): zeros where they were.
    data = log.read_bytes()
    commit_start = data.rindex(b"\n", 0, len(data) - 1) + 1
    log.write_bytes(data[: sizes[1]] + bytes(commit_start - sizes[1]) + data[commit_start:])

    reopened = FileApplicationRecorder(tmp_path)
    assert (run_file.stat().st_size, log.stat().st_size) == sizes
    assert reopened.select_events(events[0].originator_id) == events[:5]


def crash_batch() -> list[StoredEvent]:
    """The rest of a stored run (appended), and two new runs (files created)."""
    return [
        *history_events("activity_heartbeat")[5:],
        *history_events("timers"),
        *history_events("signals_many_batched"),
    ]


def crash_during_insert(root: str, crash_point: str) -> None:
    """Child: insert one batch spanning several runs and die by SIGKILL at `crash_point`."""
    name, _, nth = crash_point.partition(":")
    calls = 0
    original: Callable[..., Any] = getattr(store_module.FileStore, name, None) or getattr(
        store_module, name
    )

    def crash_before_nth_call(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args)

    if hasattr(store_module.FileStore, name):
        setattr(store_module.FileStore, name, crash_before_nth_call)
    else:
        setattr(store_module, name, crash_before_nth_call)
    recorder = FileApplicationRecorder(root)
    recorder.insert_events(crash_batch())


@pytest.mark.parametrize(
    "crash_point",
    ["_write_file:2", "_write_file:3", "_write_all:2"],
    ids=["after-one-file", "after-two-files", "before-the-commit-line"],
)
def test_a_writer_killed_mid_batch_leaves_none_of_its_files_changed(
    tmp_path: Path, crash_point: str
) -> None:
    existing = history_events("activity_heartbeat")
    recorder = FileApplicationRecorder(tmp_path)
    recorder.insert_events(existing[:5])
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    child = run_child(crash_during_insert, str(tmp_path), crash_point)
    child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL

    reopened = FileApplicationRecorder(tmp_path)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # every file of the batch restored or removed, the log too
    assert sorted(p.name for p in (tmp_path / "runs" / "default").iterdir()) == [
        "oracle-activity_heartbeat"
    ]
    assert reopened.max_notification_id() == 5
    reopened.insert_events(crash_batch())
    assert reopened.select_events(existing[0].originator_id) == existing


def test_a_run_file_cut_mid_line_loses_its_last_batch_whole(tmp_path: Path) -> None:
    events = history_events("activity_heartbeat")
    recorder = FileApplicationRecorder(tmp_path)
    recorder.insert_events(events[:5])
    run_file = only_file(tmp_path, "runs/*/*/*.jsonl")
    first_batch_end = run_file.stat().st_size
    recorder.insert_events(events[5:10])
    os.truncate(run_file, first_batch_end + 30)

    reopened = FileApplicationRecorder(tmp_path)
    assert run_file.stat().st_size == first_batch_end
    assert reopened.select_events(events[0].originator_id) == events[:5]
    assert reopened.max_notification_id() == 5
    reopened.insert_events(events[5:10])  # the same size as the batch lost, in its place
    with pytest.raises(OperationalError, match="rolled back"):
        recorder.max_notification_id()  # it had read the batch now gone: it says so once
    assert recorder.max_notification_id() == 10
    recorder.insert_events(events[10:])
    assert reopened.select_events(events[0].originator_id) == events


def test_garbage_after_a_file_is_cut_off_when_the_file_is_next_read(tmp_path: Path) -> None:
    first, second = history_events("activity_heartbeat"), history_events("timers")
    recorder = FileApplicationRecorder(tmp_path)
    recorder.insert_events(first)
    recorder.insert_events(second)
    first_file = only_file(tmp_path, "runs/*/oracle-activity_heartbeat/*.jsonl")
    committed = first_file.stat().st_size
    with first_file.open("ab") as f:
        f.write(b'{"eventId":"99", garbage\x00\x00')

    reopened = FileApplicationRecorder(tmp_path)
    assert reopened.select_events(first[0].originator_id) == first
    assert first_file.stat().st_size == committed
    assert all(orjson.loads(line) for line in first_file.read_bytes().splitlines())


def test_damage_inside_the_commit_log_is_an_error_not_a_rollback(tmp_path: Path) -> None:
    events = history_events("activity_heartbeat")
    recorder = FileApplicationRecorder(tmp_path)
    recorder.insert_events(events[:5])
    recorder.insert_events(events[5:])
    log = tmp_path / "notifications.jsonl"
    data = bytearray(log.read_bytes())
    second_line = data.index(b"\n") + 1
    data[second_line : second_line + 5] = b"XXXXX"
    log.write_bytes(bytes(data))

    with pytest.raises(OperationalError, match="unreadable log line"):
        FileApplicationRecorder(tmp_path)
    assert log.read_bytes() == bytes(data)


def test_an_io_error_mid_batch_undoes_what_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    existing, new = history_events("activity_heartbeat"), history_events("timers")
    recorder = FileApplicationRecorder(tmp_path)
    recorder.insert_events(existing[:5])
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    original = store_module.FileStore._write_file
    calls = []

    def disk_full_on_second_file(self: store_module.FileStore, *args: Any) -> None:
        calls.append(args)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, *args)

    monkeypatch.setattr(store_module.FileStore, "_write_file", disk_full_on_second_file)
    with pytest.raises(OSError, match="No space"):
        recorder.insert_events(existing[5:] + new)
    monkeypatch.undo()

    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    recorder.insert_events(existing[5:] + new)
    assert recorder.select_events(existing[0].originator_id) == existing
    assert recorder.select_events(new[0].originator_id) == new


def append_forever(root: str, first_id: str, second_id: str) -> None:
    """Child: append batches spanning two aggregates, printing each acknowledged version."""
    recorder = FileApplicationRecorder(root)
    a, b = UUID(first_id), UUID(second_id)
    version = len(recorder.select_events(a)) + 1
    while True:
        recorder.insert_events(generic_events(a, version, 25) + generic_events(b, version, 25))
        print(version + 24, flush=True)
        version += 25


def test_writers_killed_at_random_moments_lose_only_their_unacknowledged_batch(
    tmp_path: Path,
) -> None:
    a, b = uuid4(), uuid4()
    acknowledged = 0
    for round_number in range(6):
        child = run_child(append_forever, str(tmp_path), str(a), str(b))
        assert child.stdout is not None
        for _ in range(1 + round_number % 3):
            acknowledged = int(child.stdout.readline())
        os.kill(child.pid, signal.SIGKILL)
        child.wait()

        recorder = FileApplicationRecorder(tmp_path)
        versions_a = [e.originator_version for e in recorder.select_events(a)]
        versions_b = [e.originator_version for e in recorder.select_events(b)]
        assert versions_a == versions_b == list(range(1, len(versions_a) + 1))
        assert len(versions_a) % 25 == 0  # whole batches only, across both files
        assert acknowledged <= len(versions_a) <= acknowledged + 25
        for path in tmp_path.glob("aggregates/*.jsonl"):
            lines = path.read_bytes().split(b"\n")
            assert lines[-1] == b"" and len(lines) - 1 == len(versions_a)
            assert all(orjson.loads(line) for line in lines[:-1])
        recorder.close()

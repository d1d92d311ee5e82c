"""One table of a files root on disk: the lock, the commit protocol, recovery and raw reads.

Every operation holds the root's lock: a thread lock inside the process, then `flock` on
`<root>/.lock` across processes. Under it the store first catches up with the commit log
(transactions other processes committed) and rolls back whatever a crashed writer left behind,
so it always works on committed state. Writing (`commit`) follows `txlog`'s protocol: begin
line, data appended and fsynced (new files' directories too), then entries and commit line in
one write, then fsync of the log. Bytes of a data file beyond its committed size are a torn or
abandoned write: they are cut off when the file is next appended or read, and on open for the
files of the last transaction.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path

from eventsourcing.persistence import InterfaceError, OperationalError

from runhistory.stores.files.index import Index, Stream
from runhistory.stores.files.layout import LOCK_FILE, Table, meta_file, run_key_json
from runhistory.stores.files.planning import Plan
from runhistory.stores.files.txlog import Transaction, parse

__all__ = ["FileStore"]

_OPEN_FLAGS = os.O_CLOEXEC


class FileStore:
    """The on-disk side of one table (`events` or `snapshots`) of the root directory `root`,
    created on first use. Recorders query its `Index` and lines under `locked()`."""

    def __init__(self, root: str | os.PathLike[str], table: Table) -> None:
        self.root = Path(root)
        self.table = table
        self._mutex = threading.RLock()
        self._fds = _Descriptors()
        weakref.finalize(self, self._fds.close_if_ours)
        self._fresh = True
        self._held = False
        self._closed = False
        self._index = Index()
        self._listeners: set[threading.Event] = set()
        with self.locked():
            pass

    # -- opening, locking, catching up ---------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[Index]:
        """Hold the root's lock, with the index caught up with every committed transaction."""
        with self._mutex:
            if self._held:  # nested in this thread: already locked and caught up
                yield self._index
                return
            if self._closed:
                raise InterfaceError(f"files store {self.root} is closed")
            if self._fds.pid != os.getpid():
                self._open()
            fcntl.flock(self._fds.lock, fcntl.LOCK_EX)
            self._held = True
            try:
                self._catch_up()
                yield self._index
            finally:
                self._held = False
                fcntl.flock(self._fds.lock, fcntl.LOCK_UN)

    def _open(self) -> None:
        # After a fork the inherited descriptors share the parent's lock: open our own.
        created = _make_dirs(self.root)
        lock_fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o644)
        log_flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | _OPEN_FLAGS
        log_fd = os.open(self.root / self.table.log, log_flags, 0o644)
        for parent in created | {self.root}:
            _fsync_dir(parent)
        self._fds.close()  # after a fork, the copies inherited: the parent keeps its own
        self._fds.lock, self._fds.log, self._fds.pid = lock_fd, log_fd, os.getpid()
        self._index = Index()
        self._fresh = True

    def _catch_up(self) -> None:
        index = self._index
        size = os.fstat(self._fds.log).st_size
        if not self._fresh and not self._still_read_as(size):
            # Another process rolled back a damaged transaction we had read: start over.
            self._index, self._fresh = Index(), True
            raise OperationalError(
                f"{self.root / self.table.log} no longer holds the transactions read from it: "
                "a damaged one was rolled back; the store is re-read on next use"
            )
        if size == index.log_offset and not self._fresh:
            return
        unread = _pread_all(self._fds.log, size - index.log_offset, index.log_offset)
        parsed = parse(unread, index.log_offset, index.transactions)
        if parsed.corrupt:
            raise OperationalError(f"{self.root / self.table.log}: {parsed.corrupt}")
        pending = parsed.pending
        last = parsed.transactions[-1] if parsed.transactions else None
        if self._fresh and pending is None and last is not None and not self._settle(last):
            pending = parsed.transactions.pop()
        try:
            for tx in parsed.transactions:
                index.apply(tx)
        except BaseException:
            self._index, self._fresh = Index(), True  # never keep half a catch-up
            raise
        self._fresh = False
        if pending is not None or size > index.log_offset:
            self._roll_back(pending)

    def _still_read_as(self, size: int) -> bool:
        """Whether the log still ends the last transaction we read where we read it."""
        index = self._index
        if index.last is None:
            return size >= index.log_offset
        line = index.last.commit_line
        start = index.log_offset - len(line)
        return size >= index.log_offset and os.pread(self._fds.log, len(line), start) == line

    def _settle(self, tx: Transaction) -> bool:
        """On open: cut uncommitted bytes after the last transaction's lines, and say whether
        its lines are all there (if not, that transaction is rolled back: all or nothing)."""
        for path, end in tx.file_ends().items():
            full = self.root / path
            try:
                with open(full, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    f.seek(max(end - 1, 0))
                    if size < end or f.read(1) != b"\n":
                        return False
            except FileNotFoundError:
                return False
            if size > end:
                _truncate(full, end)
        return True

    def _roll_back(self, tx: Transaction | None) -> None:
        """Undo an uncommitted transaction: restore its files, cut the log after the last
        committed one."""
        if tx is not None:
            for path, before in tx.files.items():
                self._restore(path, self._index.ends.get(path, before))
        os.ftruncate(self._fds.log, self._index.log_offset)
        os.fsync(self._fds.log)

    def _restore(self, path: str, size: int | None) -> None:
        full = self.root / path
        if size is None:
            with contextlib.suppress(FileNotFoundError):
                full.unlink()
                _fsync_dir(full.parent)
                _prune_dirs(full.parent, self.root)
            return
        with contextlib.suppress(FileNotFoundError):
            if full.stat().st_size > size:
                _truncate(full, size)

    # -- writing ---------------------------------------------------------------------------

    def commit(self, plan: Plan) -> None:
        """Write a checked insert durably, all or nothing. Call under `locked()`."""
        tx = plan.tx
        tx.start = self._index.log_offset
        begin = tx.begin_line()
        try:
            _write_all(self._fds.log, begin)
            dirs: set[Path] = set()
            for path, data in plan.appends.items():
                self._write_file(path, bytes(data), tx.files[path], dirs)
            for path, content in plan.creates.items():
                self._write_file(path, content, None, dirs)
            for directory in dirs:
                _fsync_dir(directory)
            body = tx.body_lines()
            _write_all(self._fds.log, body)
            os.fsync(self._fds.log)
        except BaseException:
            # Undo what we can now; whatever is left the next open rolls back from `begin`.
            with contextlib.suppress(OSError):
                self._roll_back(tx)
            raise
        tx.end = tx.start + len(begin) + len(body)
        self._index.apply(tx)

    def _write_file(self, path: str, data: bytes, before: int | None, dirs: set[Path]) -> None:
        full = self.root / path
        if before is None:
            dirs.update(_make_dirs(full.parent))
            dirs.add(full.parent)
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _OPEN_FLAGS, 0o644)
        else:
            fd = os.open(full, os.O_WRONLY | _OPEN_FLAGS)
        try:
            if before is not None:
                size = os.fstat(fd).st_size
                _check_size(full, size, before)
                if size > before:
                    os.ftruncate(fd, before)
            _pwrite_all(fd, data, before or 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading ---------------------------------------------------------------------------

    def read_lines(self, stream: Stream, positions: Sequence[int]) -> list[bytes]:
        """The lines (without newline) at `positions` of `stream`. Call under `locked()`."""
        if not positions:
            return []
        offsets, lengths = stream.offsets, stream.lengths
        lo = min(offsets[p] for p in positions)
        hi = max(offsets[p] + lengths[p] for p in positions)
        full = self.root / stream.path
        end = self._index.ends[stream.path]
        try:
            fd = os.open(full, os.O_RDONLY | _OPEN_FLAGS)
        except FileNotFoundError:
            raise OperationalError(f"{full} is missing") from None
        try:
            size = os.fstat(fd).st_size
            _check_size(full, size, end)
            if size > end:
                _truncate(full, end)
            buf = _pread_all(fd, hi - lo, lo)
        finally:
            os.close(fd)
        lines = []
        for p in positions:
            start = offsets[p] - lo
            stop = start + lengths[p]
            if buf[stop - 1 : stop] != b"\n":
                raise OperationalError(f"{full}: no line at offset {offsets[p]}")
            lines.append(buf[start : stop - 1])
        return lines

    def run_key(self, stream: Stream) -> bytes:
        """The `runKey` JSON of a run, from its metadata file (read once)."""
        if stream.run_key is None:
            path = self.root / meta_file(stream.path)
            try:
                stream.run_key = run_key_json(path.read_bytes(), str(path))
            except FileNotFoundError:
                raise OperationalError(f"{path} is missing") from None
        return stream.run_key

    # -- listeners and closing -------------------------------------------------------------

    def listen(self, event: threading.Event) -> None:
        self._listeners.add(event)

    def unlisten(self, event: threading.Event) -> None:
        self._listeners.discard(event)

    def notify(self) -> None:
        for event in list(self._listeners):
            event.set()

    def close(self) -> None:
        with self._mutex:
            self._fds.close_if_ours()
            self._closed = True


class _Descriptors:
    """The lock and log file descriptors of a store, and the process that opened them;
    closed with the store, or when it is collected."""

    __slots__ = ("lock", "log", "pid")

    def __init__(self) -> None:
        self.lock = self.log = -1
        self.pid = 0

    def close(self) -> None:
        for fd in (self.lock, self.log):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.lock = self.log = -1

    def close_if_ours(self) -> None:
        if self.pid == os.getpid():
            self.close()


def _check_size(path: Path, size: int, committed: int) -> None:
    if size < committed:
        raise OperationalError(
            f"{path} has lost committed bytes: {size} bytes, {committed} committed"
        )


def _make_dirs(directory: Path) -> set[Path]:
    """Create `directory` and missing parents; return the directories whose entries changed
    (to fsync)."""
    missing = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    changed = set()
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir()
        changed.add(d.parent)
    return changed


def _prune_dirs(directory: Path, root: Path) -> None:
    while directory != root and root in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def _truncate(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | _OPEN_FLAGS)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | _OPEN_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            raise OperationalError(f"unexpected end of file at offset {offset}")
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)

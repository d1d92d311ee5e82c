"""Coverage-guided fuzzing of the JSON adapter and the validator with atheris (libFuzzer).

Every input is a mode byte followed by bytes handed to `load_history`. The mode picks strict or
lenient decoding, first-error or collect-all validation, and how the bytes go in: as `bytes`, as
`str` (when they are UTF-8), or as a file (`.json`, so the chunked file reader streams it), so
all three readers (text, file, whole parse) and every validator path are fuzzed. The property: only `HistoryError`
subclasses may escape. Anything else is a crash; libFuzzer stops and writes the input to
`crash-<sha1>` in the working directory.

The seed corpus is the real histories of ../shared/conformance (each written once per mode), so
the fuzzer starts from valid histories and mutates them, rather than from nothing.

Run (the figures in docs/reliability.md come from this command):

    .venv/bin/python tools/fuzz_history.py -atheris_runs=1000000 -max_len=8192 \\
        -print_final_stats=1 /tmp/rh-fuzz-corpus > /tmp/rh-fuzz.log 2>&1

(`-atheris_runs` counts every input the target is given; libFuzzer prints
`Done 1000000 in N second(s)` at the end. Without `-max_len` the harness sets 65536, enough for
the largest seed; 8192 keeps mutated inputs small and the rate near 3,000 inputs a second.)

`--seed-corpus DIR` writes the seed corpus into DIR (created) and exits; the command above does
that first by itself when the corpus directory does not exist yet.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import tempfile
from pathlib import Path

import atheris  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["runhistory"]):
    from runhistory.adapters.history_json import load_history
    from runhistory.domain.errors import HistoryError

MODES = 16  # bit 0: lenient, bit 1: collect_all, bit 2: as str, bit 3: as a file
# in memory when there is a /dev/shm: a write to a disk-backed /tmp can cost a millisecond
_DIR = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
_FILE = _DIR / f"rh-fuzz-{os.getpid()}.json"
atexit.register(_FILE.unlink, missing_ok=True)


def test_one_input(data: bytes) -> None:
    """The fuzz target: one mode byte, then the history bytes."""
    if not data:
        return
    mode, raw = data[0] % MODES, data[1:]
    source: str | bytes | Path = raw
    if mode & 8:
        _FILE.write_bytes(raw)
        source = _FILE
    elif mode & 4:
        try:
            source = raw.decode()
        except UnicodeDecodeError:
            source = raw
        if isinstance(source, str) and source.lstrip()[:1] not in ("{", "["):
            return  # a str that is not JSON text is read as a path: not what this fuzzes
    with contextlib.suppress(HistoryError):
        load_history(source, strict=not mode & 1, collect_all=bool(mode & 2))


def write_seed_corpus(directory: Path) -> int:
    """Write each small real history once per mode into `directory`; return how many."""
    from tests.conformance_data import final_histories

    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for _label, path in final_histories():
        raw = path.read_bytes()
        if len(raw) > 64_000:  # libFuzzer's default -max_len is far smaller anyway
            continue
        for mode in range(MODES):
            (directory / f"{path.parent.name}-{path.stem}-{mode}").write_bytes(bytes([mode]) + raw)
            count += 1
    return count


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--seed-corpus"]:
        print(write_seed_corpus(Path(args[1])), "seed inputs written")
        return
    corpora = [a for a in args if not a.startswith("-")]
    if corpora and not Path(corpora[0]).exists():
        write_seed_corpus(Path(corpora[0]))
    # real histories are up to ~60 KB; let mutated ones be as long
    if not any(a.startswith("-max_len=") for a in args):
        sys.argv.append("-max_len=65536")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

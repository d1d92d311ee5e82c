"""Text and file sources are read event by event; the result equals reading the parsed dict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runhistory import MalformedHistory, dump_history, load_history
from runhistory.adapters.json_stream import stream_events
from tests.conformance_data import final_histories

HISTORIES = list(final_histories())
pytestmark = pytest.mark.skipif(not HISTORIES, reason="shared/conformance not found")


@pytest.mark.parametrize(("label", "path"), HISTORIES, ids=[label for label, _ in HISTORIES])
def test_a_file_a_text_and_a_dict_give_the_same_run(label: str, path: Path) -> None:
    doc = json.loads(path.read_text())
    from_dict = load_history(doc)
    for source in (path, path.read_text(), path.read_bytes(), json.dumps(doc["events"])):
        run = load_history(source)
        assert run.key == from_dict.key
        assert dump_history(run) == doc


def test_the_events_are_yielded_one_by_one_in_order() -> None:
    text = json.dumps({"events": [{"eventId": str(i)} for i in range(1, 6)], "other": 1})
    stream = stream_events(text)
    assert stream is not None
    assert [e["eventId"] for e in stream] == ["1", "2", "3", "4", "5"]


def test_other_shapes_are_left_to_the_whole_parser() -> None:
    assert stream_events('{"history": {"events": []}}') is None
    assert stream_events('{"nextPageToken": "", "events": []}') is None


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"events": [{"eventId": "1"}, {"eventId": ', "$.events[1]"),
        ('{"events": [{"eventId": "1"} {"eventId": "2"}]}', "$.events[1]"),
        ('{"events": [{"eventId": "1"}]} trailing', "$"),
        ('[{"eventId": "1"}] [', "$"),
    ],
)
def test_broken_text_is_refused_with_where(text: str, path: str) -> None:
    stream = stream_events(text)
    assert stream is not None
    with pytest.raises(MalformedHistory) as info:
        list(stream)
    assert info.value.path == path


def test_invalid_utf8_is_a_malformed_history() -> None:
    with pytest.raises(MalformedHistory):
        load_history(b'{"events": [{"eventId": "1", "x": "\xff"}]}')


@pytest.mark.parametrize("chunk", [7, 64, 4096])
def test_files_stream_across_chunk_boundaries(
    chunk: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    from runhistory.adapters import json_stream

    monkeypatch.setattr(json_stream, "_CHUNK", chunk)
    for _, path in HISTORIES[:12]:
        doc = json.loads(path.read_text())
        packed = tmp_path / (path.parent.name + ".json.gz")
        packed.write_bytes(gzip.compress(path.read_bytes()))
        assert dump_history(load_history(path)) == doc
        assert dump_history(load_history(packed)) == doc


def test_a_truncated_file_is_malformed_at_the_event_it_cuts(tmp_path: Path) -> None:
    _, path = HISTORIES[0]
    text = path.read_text()
    cut = tmp_path / "cut.json"
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(MalformedHistory) as info:
        load_history(cut)
    assert info.value.path.startswith("$.events[")

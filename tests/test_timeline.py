"""`render_timeline`: a self-contained, well-formed page with one lane per entity of the run."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from runhistory import load_history, timeline
from runhistory.adapters.timeline_html import FAILURE_COLOUR, LANE_KINDS, render_timeline
from tests.conformance_data import CONFORMANCE, final_histories

HISTORIES = dict(final_histories())
pytestmark = pytest.mark.skipif(not HISTORIES, reason="shared/conformance not found")
SVG_NS = "http://www.w3.org/2000/svg"
FAILED_ACTIVITY = CONFORMANCE / "activity_non_retryable_failure" / "history.json"
HOSTILE = "<script>alert(1)</script>"


def _svg(page: str) -> ET.Element:
    start, end = page.index("<svg"), page.index("</svg>") + len("</svg>")
    return ET.fromstring(page[start:end])


def _lanes(svg: ET.Element) -> list[ET.Element]:
    return [g for g in svg.iter(f"{{{SVG_NS}}}g") if "lane" in g.get("class", "").split()]


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


@pytest.mark.parametrize("label", sorted(HISTORIES))
def test_every_conformance_history_renders_one_lane_per_entity(label: str) -> None:
    run = load_history(HISTORIES[label])
    page = render_timeline(run)
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert {"html", "head", "body", "svg", "style"} <= set(checker.tags)
    assert "script" not in checker.tags
    svg = _svg(page)
    lanes = _lanes(svg)
    expected = [r for r in timeline(run) if r.kind in LANE_KINDS]
    assert [(g.get("data-kind"), g.get("data-key")) for g in lanes] == [
        (r.kind, r.key) for r in expected
    ]
    for lane in lanes:  # every lane has a tooltip naming its events
        title = lane.find(f"{{{SVG_NS}}}title")
        assert title is not None and "events:" in (title.text or "")
    urls = set(re.findall(r"https?://[^\s\"'<>)]*", page))
    assert urls <= {SVG_NS}
    assert run.key is not None and run.key.workflow_id in page


def test_the_header_names_the_run() -> None:
    run = load_history(FAILED_ACTIVITY)
    page = render_timeline(run)
    assert run.key is not None
    for text in (run.key.workflow_id, run.key.run_id, "FAILED", "Duration", "Type"):
        assert text in page


def test_a_failed_activity_is_drawn_in_the_failure_colour() -> None:
    page = render_timeline(load_history(FAILED_ACTIVITY))
    (activity,) = [g for g in _lanes(_svg(page)) if g.get("data-kind") == "activity"]
    assert "failed" in (activity.get("class") or "").split()
    fills = {r.get("fill") for r in activity.iter(f"{{{SVG_NS}}}rect")}
    assert FAILURE_COLOUR in fills
    title = activity.find(f"{{{SVG_NS}}}title")
    assert title is not None and "permanent failure" in (title.text or "")
    ok = load_history(HISTORIES["activity_retry_then_success/history.json"])
    (good,) = [g for g in _lanes(_svg(render_timeline(ok))) if g.get("data-kind") == "activity"]
    assert FAILURE_COLOUR not in {r.get("fill") for r in good.iter(f"{{{SVG_NS}}}rect")}
    assert "attempts" in ET.tostring(good, encoding="unicode")  # retried: attempts shown


def test_hostile_text_from_the_history_stays_inert() -> None:
    doc: dict[str, Any] = json.loads(FAILED_ACTIVITY.read_text())
    doc["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"] = HOSTILE
    for event in doc["events"]:
        failure = event.get("activityTaskFailedEventAttributes", {}).get("failure")
        if failure:
            failure["message"] = '</title><script>alert(2)</script>"\x01&'
    page = render_timeline(load_history(doc))
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    checker = _Checker()
    checker.feed(page)
    assert "script" not in checker.tags
    _svg(page)  # still well-formed XML, control characters and all


def test_pending_work_is_an_open_span_to_the_end_of_the_history() -> None:
    doc = json.loads(HISTORIES["activity_retry_then_success/history.json"].read_text())
    cut = next(
        i for i, e in enumerate(doc["events"]) if e["eventType"].endswith("ACTIVITY_TASK_SCHEDULED")
    )
    doc["events"] = doc["events"][: cut + 1]
    run = load_history(doc)
    page = render_timeline(run)
    (activity,) = [g for g in _lanes(_svg(page)) if g.get("data-kind") == "activity"]
    assert "open" in (activity.get("class") or "").split()
    assert "PENDING" in ET.tostring(activity, encoding="unicode")
    assert "so far" in page  # an open run's duration


# -- a real browser draws it -------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)


def _png_pixels(data: bytes) -> tuple[int, int, set[tuple[int, ...]]]:
    """(width, height, the set of pixel colours) of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour_type = struct.unpack(">IIBB", data[16:26])
    assert data[12:16] == b"IHDR" and depth == 8 and colour_type in (2, 6)
    bpp = 3 if colour_type == 2 else 4
    idat, pos = b"", 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += length + 12
    raw, stride = zlib.decompress(idat), width * bpp
    previous, colours = bytearray(stride), set[tuple[int, ...]]()
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(tuple(line[i : i + 3]) for i in range(0, stride, bpp))
        previous = line
    return width, height, colours


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not installed (Debian: apt-get install -y --no-install-recommends chromium)",
)
def test_a_headless_browser_draws_the_page(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    page = tmp_path / "run.html"
    page.write_text(render_timeline(load_history(FAILED_ACTIVITY)), encoding="utf-8")
    png = tmp_path / "run.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}",
            "--window-size=1400,900",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert png.exists(), "chromium wrote no screenshot"
    width, height, colours = _png_pixels(png.read_bytes())
    assert (width, height) == (1400, 900)
    assert len(colours) > 10, "the screenshot is blank"
    red = tuple(int(FAILURE_COLOUR[i : i + 2], 16) for i in (1, 3, 5))
    assert red in colours, "the failed activity is not drawn in red"

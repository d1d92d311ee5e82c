"""`render_timeline(run)`: the run as a self-contained HTML page, drawn like Temporal UI's timeline.

One lane per activity, timer, child workflow, Nexus operation and workflow task (in the order
they were opened), with the scheduled→started span in a light shade and started→closed in a
dark one; failures and timeouts in red; work still open at the end of the history drawn to that
end as a dashed, open span. Signals, updates and external signal/cancel requests are point
markers on one lane at the top. Hovering anything shows its event ids, times, durations and
failure message (SVG `<title>` tooltips: no script at all).

The page loads nothing: inline CSS and SVG only, and a Content-Security-Policy that forbids
every fetch. Every string taken from the history is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from runhistory.domain.run import WorkflowRun
from runhistory.domain.timeval import Duration, Timestamp
from runhistory.projections.timelines import TimelineRow, run_durations, timeline

__all__ = ["FAILURE_COLOUR", "LANE_KINDS", "MARKER_KINDS", "human", "render_timeline"]

LANE_KINDS = ("workflow_task", "activity", "timer", "child", "nexus_operation")
MARKER_KINDS = ("signal", "update", "external_signal", "external_cancel")
FAILURE_COLOUR = "#dc2626"
FAILED = frozenset({"FAILED", "TIMED_OUT", "START_FAILED", "TERMINATED"})
OPEN = frozenset({"PENDING", "PENDING_TRANSIENT", "CANCEL_REQUESTED", "ABANDONED"})

# kind: (label, queued shade, running shade)
_STYLE = {
    "workflow_task": ("Workflow task", "#cbd5e1", "#64748b"),
    "activity": ("Activity", "#bfdbfe", "#2563eb"),
    "timer": ("Timer", "#fde68a", "#d97706"),
    "child": ("Child workflow", "#ddd6fe", "#7c3aed"),
    "nexus_operation": ("Nexus operation", "#99f6e4", "#0d9488"),
    "signal": ("Signal", "#fbcfe8", "#db2777"),
    "update": ("Update", "#c7d2fe", "#4f46e5"),
    "external_signal": ("Signal sent", "#fbcfe8", "#be185d"),
    "external_cancel": ("Cancel request", "#fed7aa", "#c2410c"),
}
_CANCELED_COLOUR = "#9ca3af"
_FAILED_LIGHT = "#fecaca"

LABEL_W, PLOT_W, RIGHT_PAD = 300, 1020, 20
WIDTH = LABEL_W + PLOT_W + RIGHT_PAD
LANE_H, BAR_H, AXIS_H = 22, 12, 30
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _esc(value: object, limit: int = 4000) -> str:
    """Text from the history, made inert in HTML and SVG and parseable as XML."""
    text = _NOT_XML.sub("\ufffd", str(value))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=True)


def human(nanos: int) -> str:
    """A duration for people: 850ns, 12.4ms, 1.52s, 3m 04s, 2h 03m, 3d 04h."""
    sign, n = ("-" if nanos < 0 else ""), abs(nanos)
    if n < 1_000:
        text = f"{n}ns"
    elif n < 1_000_000:
        text = f"{n / 1_000:.3g}µs"
    elif n < 1_000_000_000:
        text = f"{n / 1_000_000:.3g}ms"
    elif n < 60_000_000_000:
        text = f"{n / 1_000_000_000:.3g}s"
    else:
        s = n // 1_000_000_000
        if s < 3600:
            text = f"{s // 60}m {s % 60:02d}s"
        elif s < 86400:
            text = f"{s // 3600}h {s % 3600 // 60:02d}m"
        else:
            text = f"{s // 86400}d {s % 86400 // 3600:02d}h"
    return sign + text


def _dur(value: Duration | None) -> str:
    return "-" if value is None else human(value.total_nanos)


class _Scale:
    """Event time → x pixel, over [first event, close or last event]."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, max(end, start + 1)

    def x(self, t: Timestamp | int) -> float:
        n = t if isinstance(t, int) else t.total_nanos
        return LABEL_W + (n - self.start) * PLOT_W / (self.end - self.start)

    def ticks(self) -> list[int]:
        """At most 10 offsets (ns) on a 1-2-5 grid."""
        span = self.end - self.start
        step = next(m * 10**e for e in range(20) for m in (1, 2, 5) if span / (m * 10**e) <= 10)
        return list(range(0, span + 1, step))


def _bounds(run: WorkflowRun) -> tuple[int, int]:
    times = [e.event_time.total_nanos for e in run.history if e.event_time is not None]
    if not times:
        return 0, 1
    close = run.close_event
    end = close.event_time.total_nanos if close is not None and close.event_time else max(times)
    return min(times), max(end, max(times))


def _tooltip(row: TimelineRow, start: int) -> str:
    label = _STYLE.get(row.kind, (row.kind,))[0]
    lines = [f"{label} {row.key}" + (f" · {row.name}" if row.name and row.name != row.key else "")]
    lines.append(f"outcome: {row.outcome}")
    lines.append("events: " + ", ".join(str(i) for i in row.event_ids))
    for what, t in (("scheduled", row.scheduled), ("started", row.started), ("closed", row.closed)):
        if t is not None:
            lines.append(f"{what}: {t} (+{human(t.total_nanos - start)})")
    if row.kind not in ("signal",):
        lines.append(
            f"queued {_dur(row.queued)} · running {_dur(row.running)} · total {_dur(row.total)}"
        )
    if row.attempts is not None:
        lines.append(f"attempts: {row.attempts}")
    if row.detail:
        lines.append(row.detail)
    if row.failure:
        lines.append(f"failure: {row.failure}")
    return _esc("\n".join(lines))


def _colours(row: TimelineRow) -> tuple[str, str]:
    _, light, dark = _STYLE.get(row.kind, ("", "#e5e7eb", "#6b7280"))
    if row.outcome in FAILED or (row.failure and row.kind != "workflow_task"):
        return _FAILED_LIGHT, FAILURE_COLOUR
    if row.kind == "workflow_task" and row.outcome not in OPEN and row.outcome != "COMPLETED":
        return _FAILED_LIGHT, FAILURE_COLOUR  # a failed or timed-out workflow task
    if row.outcome in ("CANCELED", "ABANDONED"):
        return light, _CANCELED_COLOUR
    return light, dark


def _lane(row: TimelineRow, index: int, y: float, scale: _Scale, end: int) -> str:
    light, dark = _colours(row)
    is_open = row.closed is None
    failed = dark == FAILURE_COLOUR
    classes = ["lane", row.kind.replace("_", "-")] + (["failed"] if failed else [])
    classes += ["open"] if is_open else []
    stripe = ' class="stripe"' if index % 2 else ""
    name = row.name if row.kind != "workflow_task" else f"attempt {row.attempts or 1}"
    label = f"{_STYLE.get(row.kind, (row.kind,))[0]} {row.key}"
    if row.kind == "activity" and row.attempts and row.attempts > 1:
        name += f" ({row.attempts} attempts)"
    out = [
        f'<g class="{" ".join(classes)}" data-kind="{row.kind}" data-key="{_esc(row.key, 200)}">',
        f"<title>{_tooltip(row, scale.start)}</title>",
        f'<rect{stripe} x="0" y="{y:.1f}" width="{WIDTH}" height="{LANE_H}" fill="transparent"/>',
        f'<text class="label" x="8" y="{y + 15:.1f}">{_esc(label, 40)}'
        f'<tspan class="name"> {_esc(name, 34)}</tspan></text>',
    ]
    bar_y = y + (LANE_H - BAR_H) / 2
    first = row.scheduled or row.started
    spans: list[tuple[Timestamp | None, Timestamp | int | None, str, str]] = []
    if row.scheduled is not None and row.started is not None and row.started != row.scheduled:
        spans.append((row.scheduled, row.started, light, "queued"))
    if row.started is not None or first is not None:
        spans.append((row.started or first, row.closed or end, dark, "running"))
    for a, b, fill, part in spans:
        if a is None or b is None:
            continue
        x1, x2 = scale.x(a), scale.x(b)
        extra = (
            ' stroke-dasharray="4 3" fill-opacity="0.45"' if is_open and part == "running" else ""
        )
        stroke = f' stroke="{dark}"' if extra else ""
        out.append(
            f'<rect class="{part}" x="{x1:.2f}" y="{bar_y:.1f}" width="{max(x2 - x1, 2):.2f}" '
            f'height="{BAR_H}" rx="2" fill="{fill}"{stroke}{extra}/>'
        )
    if is_open and first is not None:
        tip = scale.x(end)
        out.append(
            f'<path class="open-end" d="M{tip:.2f},{bar_y - 2:.1f} l6,{BAR_H / 2 + 2:.1f} '
            f'l-6,{BAR_H / 2 + 2:.1f} z" fill="{dark}"/>'
        )
    if first is not None:
        closed = scale.x(row.closed or end)
        note = row.outcome if row.outcome != "COMPLETED" else _dur(row.total)
        if closed + 110 < LABEL_W + PLOT_W:
            anchor, tx, inside = "start", closed + 10, ""
        elif scale.x(first) - 110 > LABEL_W:
            anchor, tx, inside = "end", scale.x(first) - 4, ""
        else:
            anchor, tx, inside = "end", closed - 4, " inside"
        out.append(
            f'<text class="note{" fail" if failed else ""}{inside}" x="{tx:.2f}" '
            f'y="{y + 15:.1f}" text-anchor="{anchor}">{_esc(note)}</text>'
        )
    out.append("</g>")
    return "\n".join(out)


def _markers(rows: list[TimelineRow], y: float, scale: _Scale) -> str:
    out = [
        '<g class="markers">',
        f'<text class="label" x="8" y="{y + 15:.1f}">Signals · updates · requests</text>',
    ]
    cy = y + LANE_H / 2
    for row in rows:
        _, light, dark = _STYLE.get(row.kind, ("", "#e5e7eb", "#6b7280"))
        colour = FAILURE_COLOUR if row.outcome in FAILED or row.failure else dark
        out.append(f'<g class="marker {row.kind.replace("_", "-")}" data-kind="{row.kind}">')
        out.append(f"<title>{_tooltip(row, scale.start)}</title>")
        at = row.scheduled or row.started or row.closed
        if at is None:
            out.append("</g>")
            continue
        x = scale.x(at)
        if row.closed is not None and row.closed != at:
            x2 = scale.x(row.closed)
            out.append(
                f'<line x1="{x:.2f}" y1="{cy:.1f}" x2="{x2:.2f}" y2="{cy:.1f}" stroke="{colour}" '
                f'stroke-width="2"/><circle cx="{x2:.2f}" cy="{cy:.1f}" r="3.5" fill="{colour}"/>'
            )
        out.append(
            f'<path d="M{x:.2f},{cy - 6:.1f} l6,6 l-6,6 l-6,-6 z" fill="{colour}" '
            f'stroke="{light}"/>'
        )
        out.append("</g>")
    out.append("</g>")
    return "\n".join(out)


def _axis(scale: _Scale, top: float, bottom: float) -> str:
    out = ['<g class="axis">']
    for offset in scale.ticks():
        x = scale.x(scale.start + offset)
        out.append(
            f'<line x1="{x:.2f}" y1="{top:.1f}" x2="{x:.2f}" y2="{bottom:.1f}" class="grid"/>'
            f'<text x="{x:.2f}" y="{top - 10:.1f}" text-anchor="middle">'
            f"{'0' if offset == 0 else '+' + human(offset)}</text>"
        )
    out.append("</g>")
    return "\n".join(out)


def _svg(run: WorkflowRun, rows: list[TimelineRow]) -> str:
    start, end = _bounds(run)
    scale = _Scale(start, end)
    lanes = [r for r in rows if r.kind in LANE_KINDS]
    points = [r for r in rows if r.kind not in LANE_KINDS]
    top = AXIS_H
    height = top + LANE_H * (len(lanes) + (1 if points else 0)) + 10
    body: list[str] = [_axis(scale, top, height - 10)]
    y = float(top)
    if points:
        body.append(_markers(points, y, scale))
        y += LANE_H
    for i, row in enumerate(lanes):
        body.append(_lane(row, i, y, scale, end))
        y += LANE_H
    x_end = scale.x(end)
    body.append(
        f'<line class="end" x1="{x_end:.2f}" y1="{top:.1f}" x2="{x_end:.2f}" y2="{y:.1f}"/>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{WIDTH}" '
        f'height="{height:.0f}" viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-label="timeline">\n' + "\n".join(body) + "\n</svg>"
    )


def _legend() -> str:
    items = [(_STYLE[k][2], _STYLE[k][0]) for k in (*LANE_KINDS, "signal", "update")] + [
        (FAILURE_COLOUR, "Failed / timed out"),
        (_CANCELED_COLOUR, "Canceled / abandoned"),
    ]
    chips = "".join(
        f'<span class="chip"><i style="background:{c}"></i>{html.escape(t)}</span>'
        for c, t in items
    )
    return (
        f'<div class="legend">{chips}<span class="chip"><i class="q"></i>scheduled → started'
        '</span><span class="chip"><i class="o"></i>still open</span></div>'
    )


def _facts(run: WorkflowRun) -> Iterable[tuple[str, str]]:
    key = run.key
    first = run.history[0] if run.history else None
    wtype = getattr(getattr(getattr(first, "attributes", None), "workflow_type", None), "name", "")
    durations = run_durations(run)
    yield "Workflow ID", key.workflow_id if key else ""
    yield "Run ID", key.run_id if key else ""
    yield "Type", str(wtype)
    yield "Status", run.status
    total = _dur(durations.total)
    yield "Duration", total if durations.closed else f"{total} so far"
    if first is not None and first.event_time is not None:
        yield "Started", str(first.event_time)
    yield "Events", str(len(run.history))


_CSS = """
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px;color:#111827;
background:#fff}
h1{font-size:18px;margin:0 0 8px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0 0 12px}
dl.facts dt{color:#6b7280}dl.facts dd{margin:0;font-family:ui-monospace,monospace;
overflow-wrap:anywhere}
.status{font-weight:600}.status.FAILED,.status.TIMED_OUT,.status.TERMINATED{color:#dc2626}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin:0 0 8px;color:#374151}
.chip i{display:inline-block;width:14px;height:10px;margin-right:5px;border-radius:2px;
vertical-align:middle}
.chip i.q{background:#bfdbfe}.chip i.o{border:1px dashed #2563eb;background:#dbeafe}
.scroll{overflow-x:auto;border:1px solid #e5e7eb;border-radius:4px}
svg.timeline{display:block;font:11px ui-monospace,monospace}
svg .label{fill:#111827}svg .name{fill:#6b7280}
svg .note{fill:#4b5563;font-size:10px}svg .note.inside{fill:#fff}
svg .note.fail{fill:#dc2626;font-weight:600}
svg .axis text{fill:#6b7280;font-size:10px}svg .grid{stroke:#f1f5f9}
svg .end{stroke:#111827;stroke-dasharray:2 3}
svg .stripe{fill:#f8fafc}
svg g.lane:hover>rect:first-of-type,svg g.marker:hover{fill:#eef2ff}
svg g.lane:hover .label{font-weight:600}
p.hint{color:#6b7280;margin:6px 0 0}
"""


def render_timeline(run: WorkflowRun) -> str:
    """The run's timeline as one HTML page that needs nothing else (no network, no script)."""
    rows = timeline(run)
    facts = list(_facts(run))
    title = f"{facts[0][1]} · {facts[1][1]}"
    dl = "".join(
        f"<dt>{html.escape(k)}</dt><dd"
        + (f' class="status {_esc(v)}"' if k == "Status" else "")
        + f">{_esc(v, 500)}</dd>"
        for k, v in facts
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{_esc(title, 300)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>Timeline</h1>
<dl class="facts">{dl}</dl>
{_legend()}
<div class="scroll">
{_svg(run, rows)}
</div>
<p class="hint">Hover a lane for its event ids, times, durations and failure.
Times are relative to the first event.</p>
</body>
</html>
"""

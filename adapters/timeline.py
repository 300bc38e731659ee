"""The status timeline in SVG: shared by the subject pages and the HTML reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from domain.clock import iso
from domain.values import Status
from projections.documents import FactRecord
from projections.status import Interval
from service.reports import ServiceSpan

FILL = {0: "#cf222e", 1: "#d4a72c", 2: "#2da44e"}  # by rank: worst first
NO_STATUS = "#d0d7de"  # before the subject existed
STRIPES = "url(#stripes)"  # the middle rank (partial, suspended): not told by colour alone


def fill(status: Status | None) -> str:
    return NO_STATUS if status is None else FILL[status.rank]


def pattern(status: Status) -> str:
    return STRIPES if status.rank == 1 else fill(status)


def timeline_svg(
    subject: str,
    channels: list[str],
    intervals: list[Interval],
    events: list[FactRecord],
    start: datetime,
    end: datetime,
    services: Sequence[ServiceSpan] = (),
) -> str:
    """One bar per channel, coloured (and patterned) by status, a lane per supporting service
    marking when it was lost, and the events marked."""
    left, width, row = 80, 900, 30
    total = (end - start).total_seconds()

    def x(moment: datetime) -> float:
        return left + width * min(max((moment - start).total_seconds() / total, 0), 1)

    parts = [
        '<defs><pattern id="stripes" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#d4a72c"/>'
        '<rect width="2" height="6" fill="#fff8c5"/></pattern></defs>'
    ]
    for n, channel in enumerate(channels):
        y = 10 + n * row
        parts.append(f'<text x="0" y="{y + 15}">{channel}</text>')
        for interval in (i for i in intervals if i.channel == channel):
            a, b = interval.valid_from, interval.valid_to or end
            if b <= start or a >= end:
                continue
            title = escape(
                f"{channel}: {interval.status} from {iso(a)}"
                + (f" to {iso(interval.valid_to)}" if interval.valid_to else "")
            )
            parts.append(
                f'<rect class="interval {interval.status}" data-channel="{channel}" '
                f'x="{x(a):.1f}" y="{y}" width="{max(x(b) - x(a), 1):.1f}" height="20" '
                f'fill="{pattern(interval.status)}"><title>{title}</title></rect>'
            )
    lanes = list(dict.fromkeys(f"{s.service} ({s.provider})" for s in services))
    for n, lane in enumerate(lanes, start=len(channels)):
        y = 10 + n * row
        parts.append(f'<text x="0" y="{y + 15}">{escape(lane.split(" (")[0])}</text>')
        parts.append(
            f'<rect x="{left}" y="{y + 8}" width="{width}" height="4" fill="{fill(None)}"/>'
        )
        for span in (s for s in services if f"{s.service} ({s.provider})" == lane):
            a, b = span.lost_at, span.regained_at or end
            if b <= start or a >= end:
                continue
            title = escape(
                f"{lane}: lost {iso(a)}" + (f", regained {iso(b)}" if span.regained_at else "")
            )
            parts.append(
                f'<rect class="service-lost" data-service="{escape(span.service)}" '
                f'x="{x(a):.1f}" y="{y}" width="{max(x(b) - x(a), 1):.1f}" height="20" '
                f'fill="{FILL[0]}"><title>{title}</title></rect>'
            )
    bottom = 10 + (len(channels) + len(lanes)) * row
    for event in events:
        moment = event.occurred_at
        if moment is None or not start <= moment <= end:
            continue
        provider, reason = event.fields.get("provider"), event.fields.get("reason")
        title = escape(
            f"{iso(moment)} {event.type}"
            + (f" by {provider}" if provider else "")
            + (f": {reason}" if reason else "")
        )
        marker = (
            f'<path class="event" d="M{x(moment):.1f},{bottom} l-5,10 h10 z" fill="#1b1f24">'
            f"<title>{title}</title></path>"
            f'<line x1="{x(moment):.1f}" x2="{x(moment):.1f}" y1="6" y2="{bottom}" '
            'stroke="#1b1f24" stroke-dasharray="2,2"/>'
        )
        sources = event.fields.get("sources") or []
        parts.append(f'<a href="{escape(sources[0])}">{marker}</a>' if sources else marker)
    parts.append(f'<text x="{left}" y="{bottom + 26}">{start:%Y-%m-%d}</text>')
    parts.append(
        f'<text x="{left + width}" y="{bottom + 26}" text-anchor="end">{end:%Y-%m-%d}</text>'
    )
    label = escape(f"Status of {subject} per channel from {iso(start)} to {iso(end)}")
    return (
        f'<svg class="timeline" viewBox="0 0 {left + width + 10} {bottom + 32}" width="100%" '
        f'role="img" aria-label="{label}">' + "".join(parts) + "</svg>"
    )

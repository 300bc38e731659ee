"""The status timeline in SVG: shared by the subject pages and the HTML reports."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from html import escape

from adapters.wording import words
from domain.clock import iso
from domain.values import Status
from projections.documents import OVERALL, FactRecord
from projections.status import Interval
from service.reports import ServiceSpan

FILL = {0: "#cf222e", 1: "#d4a72c", 2: "#2da44e"}  # by rank: worst first
NO_STATUS = "#d0d7de"  # before the subject existed
STRIPES = "url(#stripes)"  # the middle rank (partial, suspended): not told by colour alone
MIN_WIDTH = 3  # px: an interval of hours in a span of years stays visible
MARKER_GAP = 11  # px: markers closer than this are drawn one below the other
MARKER_LEVELS = 6  # levels of markers at most
LABEL_CHAR = 5.0  # px: a marker label's character, at its size


def fill(status: Status | None) -> str:
    return NO_STATUS if status is None else FILL[status.rank]


def pattern(status: Status) -> str:
    return STRIPES if status.rank == 1 else fill(status)


Lane = tuple[str, Sequence[Interval]]  # a bar's label, and the runs it shows


def channel_lanes(
    channels: Sequence[str],
    intervals: Sequence[Interval],
    regional: Mapping[str, Sequence[Interval]] | None = None,
) -> list[Lane]:
    """A subject's bars: one per channel, then one per country with an answer of its own
    (its overall status there, as `regional` gives each country's runs)."""
    lanes: list[Lane] = [(c, [i for i in intervals if i.channel == c]) for c in channels]
    for code, runs in (regional or {}).items():
        lanes.append((f"in {code}", [i for i in runs if i.channel == OVERALL]))
    return lanes


def timeline_svg(
    subject: str,
    bars: Sequence[Lane],
    events: list[FactRecord],
    start: datetime,
    end: datetime,
    services: Sequence[ServiceSpan] = (),
    link: Callable[[FactRecord], str] | None = None,
) -> str:
    """One bar per lane (a channel, a country), coloured (and patterned) by status, a lane
    per supporting service marking when it was lost, a date axis, and the events marked
    (apart, when close), each marker a link (`link`: by default, to the event's first
    source)."""
    link = link or default_link
    lanes = list(dict.fromkeys((s.service, s.provider) for s in services))  # one per provider
    labels = [label for label, _ in bars] + [lane_label(*lane) for lane in lanes]
    left = min(max(80, 7 * max((len(label) for label in labels), default=0) + 8), 240)
    width, row = 900, 30
    total = (end - start).total_seconds()

    def x(moment: datetime) -> float:
        return left + width * min(max((moment - start).total_seconds() / total, 0), 1)

    parts = [
        '<defs><pattern id="stripes" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#d4a72c"/>'
        '<rect width="2" height="6" fill="#fff8c5"/></pattern></defs>'
    ]
    for n, (label, runs) in enumerate(bars):
        y = 10 + n * row
        parts.append(f'<text x="0" y="{y + 15}">{escape(label)}</text>')
        for interval in runs:
            a, b = interval.valid_from, interval.valid_to or end
            if b <= start or a >= end:
                continue
            title = escape(
                f"{label}: {interval.status} from {iso(a)}"
                + (f" to {iso(interval.valid_to)}" if interval.valid_to else "")
            )
            parts.append(
                f'<rect class="interval {interval.status}" data-channel="{escape(label)}" '
                f'x="{x(a):.1f}" y="{y}" width="{max(x(b) - x(a), MIN_WIDTH):.1f}" height="20" '
                f'fill="{pattern(interval.status)}"><title>{title}</title></rect>'
            )
    for n, lane in enumerate(lanes, start=len(bars)):
        y = 10 + n * row
        parts.append(f'<text x="0" y="{y + 15}">{escape(lane_label(*lane))}</text>')
        parts.append(
            f'<rect x="{left}" y="{y + 8}" width="{width}" height="4" fill="{fill(None)}"/>'
        )
        for span in (s for s in services if (s.service, s.provider) == lane):
            a, b = span.lost_at, span.regained_at or end
            if b <= start or a >= end:
                continue
            title = escape(
                f"{lane_label(*lane)}: lost {iso(a)}"
                + (f", regained {iso(b)}" if span.regained_at else "")
            )
            parts.append(
                f'<rect class="service-lost" data-service="{escape(span.service)}" '
                f'x="{x(a):.1f}" y="{y}" width="{max(x(b) - x(a), MIN_WIDTH):.1f}" height="20" '
                f'fill="{FILL[0]}"><title>{title}</title></rect>'
            )
    bottom = 10 + (len(bars) + len(lanes)) * row
    parts += axis(start, end, x, top=6, bottom=bottom)
    shown = sorted(
        (e for e in events if e.occurred_at is not None and start <= e.occurred_at <= end),
        key=lambda e: e.occurred_at or start,
    )
    ends: list[float] = []  # per level, where its last marker stands
    placed: list[tuple[FactRecord, float, int]] = []  # each marker, where, on which level
    for event in shown:
        moment = event.occurred_at
        assert moment is not None
        at = x(moment)
        # A marker too close to the last on a level goes one level lower, so both are seen;
        # past MARKER_LEVELS they share the last level (a dense history stays one pass).
        level = next((n for n, last in enumerate(ends) if at - last >= MARKER_GAP), len(ends))
        if level == len(ends) and level < MARKER_LEVELS:
            ends.append(at)
        level = min(level, MARKER_LEVELS - 1)
        ends[level] = at
        placed.append((event, at, level))
    following: dict[int, float] = {}  # per level, where the next marker stands
    room = []
    for _, at, level in reversed(placed):
        room.append(following.get(level, left + width + 10) - at)
        following[level] = at
    for (event, at, level), space in zip(placed, reversed(room), strict=True):
        moment = event.occurred_at
        assert moment is not None
        provider, reason = event.fields.get("provider"), event.fields.get("reason")
        title = escape(
            f"{iso(moment)} {words(event.type)}"
            + (f" by {provider}" if provider else "")
            + (f": {reason}" if reason else "")
        )
        tip = bottom + 22 + level * 12
        label = words(event.type)  # shown where the next marker of its level leaves room
        shown_label = (
            f'<text class="marker-label" x="{at + 7:.1f}" y="{tip - 3}" font-size="9">'
            f"{escape(label)}</text>"
            if space >= LABEL_CHAR * len(label) + 12
            else ""
        )
        parts.append(
            f'<a href="{link(event)}"><path class="event" data-event="{escape(event.event_id)}" '
            f'd="M{at:.1f},{tip - 12} l-5,10 h10 z" fill="#1b1f24"><title>{title}</title></path>'
            f'<line x1="{at:.1f}" x2="{at:.1f}" y1="6" y2="{tip - 12}" '
            f'stroke="#1b1f24" stroke-dasharray="2,2"/>{shown_label}</a>'
        )
    depth = bottom + 30 + 12 * max(len(ends) - 1, 0)
    label = escape(f"Status of {subject} from {iso(start)} to {iso(end)}")
    return (
        f'<svg class="timeline" viewBox="0 0 {left + width + 10} {depth}" width="100%" '
        f'role="group" aria-label="{label}">'  # a group: its markers are links
        + "".join(parts)
        + "</svg>"
    )


def lane_label(service: str, provider: str) -> str:
    """A service lane's name: the service and who provided it (two payment lanes are two
    providers)."""
    return f"{service.replace('_', ' ')}: {provider}"


def default_link(event: FactRecord) -> str:
    """Where a marker leads: the event's first source."""
    sources = event.fields.get("sources") or []
    return escape(sources[0]) if sources else f"#event-{escape(event.event_id)}"


# Ticks: (unit, count, label format), finest first; the axis takes the first that gives at
# most MAX_TICKS ticks.
TICKS = [
    ("hours", 6, "%m-%d %H:%M"),
    ("days", 1, "%Y-%m-%d"),
    ("days", 7, "%Y-%m-%d"),
    ("months", 1, "%Y-%m"),
    ("months", 3, "%Y-%m"),
    *(("years", n, "%Y") for n in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)),
]
MAX_TICKS = 8
UNIT_DAYS = {"hours": 1 / 24, "days": 1, "months": 30.44, "years": 365.25}


def axis(
    start: datetime, end: datetime, x: Callable[[datetime], float], *, top: int, bottom: int
) -> list[str]:
    """Date ticks across the span, on round dates (midnights, months, years)."""
    days = (end - start) / timedelta(days=1)
    unit, count, fmt = next(
        (t for t in TICKS if days / (UNIT_DAYS[t[0]] * t[1]) <= MAX_TICKS), TICKS[-1]
    )
    marks = []
    moment: datetime | None = first_tick(start, unit, count)
    while moment is not None and moment <= end:
        at = x(moment)
        marks.append(
            f'<line class="tick" x1="{at:.1f}" x2="{at:.1f}" y1="{top}" y2="{bottom}" '
            'stroke="#d0d7de"/>'
            f'<text x="{at:.1f}" y="{bottom + 12}" text-anchor="middle" '
            f'font-size="10">{moment.strftime(fmt)}</text>'
        )
        moment = advanced(moment, unit, count)
    return marks


def first_tick(start: datetime, unit: str, count: int) -> datetime | None:
    """The first round date at or after `start` for ticks of `count` `unit`s."""
    moment = start.replace(minute=0, second=0, microsecond=0)
    if unit != "hours":
        moment = moment.replace(hour=0)
    if unit in ("months", "years"):
        moment = moment.replace(day=1)
    if unit == "years":
        moment = moment.replace(month=1, year=max(1, moment.year - moment.year % count))
    elif unit == "months":
        moment = moment.replace(month=moment.month - (moment.month - 1) % count)
    elif unit == "hours":
        moment = moment.replace(hour=moment.hour - moment.hour % count)
    found: datetime | None = moment
    while found is not None and found < start:
        found = advanced(found, unit, count)
    return found


def advanced(moment: datetime, unit: str, count: int) -> datetime | None:
    """`count` `unit`s later, or None past the calendar's end."""
    try:
        if unit in ("hours", "days"):
            return moment + timedelta(**{unit: count})
        months = moment.month - 1 + count * (12 if unit == "years" else 1)
        return moment.replace(year=moment.year + months // 12, month=months % 12 + 1)
    except (OverflowError, ValueError):
        return None

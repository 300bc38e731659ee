"""Typed answers as JSON objects (the CLI's `--json`, the API, the read models' stored
documents) and back: times in UTC with a `Z`, absent values left out where the format
always left them out."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

import orjson

from domain import SUBJECT_CLASSES
from domain.clock import iso
from domain.values import (
    STATUSES,
    AccountStatus,
    AppStore,
    Availability,
    Channel,
    HostingScope,
    SubjectKey,
)
from projections.documents import (
    AccountDocument,
    EventRef,
    FactRecord,
    HistoryEntry,
    HostEntry,
    Measure,
    PlatformDocument,
    RegionAnswer,
    RetractionRef,
    ServiceEntry,
    StatusDocument,
)
from projections.runner import Progress
from projections.status import Interval
from service.queries import SubjectStatus
from service.query_service import Change, Ends
from service.reports import ProviderStanding

# Every status by name, for options and parameters that take one (a functional Enum).
StatusName = StrEnum("StatusName", {s.value: s.value for s in STATUSES})  # type: ignore[misc]  # mypy takes literal members only


def json_text(value: Any) -> str:
    """A JSON value as compact text (how the read models store documents and records):
    orjson, or the `json` module for what orjson refuses (a lone surrogate, an integer
    beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"))


def from_json_text(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def maybe_iso(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None


@lru_cache(maxsize=1 << 14)
def instant(text: str) -> datetime:
    """An instant as documents write it (the same few thousand recur across documents)."""
    return datetime.fromisoformat(text)


def maybe_instant(text: str | None) -> datetime | None:
    return instant(text) if text is not None else None


# Status documents ------------------------------------------------------------------------


def event_ref_json(ref: EventRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    out: dict[str, Any] = {
        "event_id": ref.event_id,
        "type": ref.type,
        "occurred_at": iso(ref.occurred_at),
    }
    if ref.provider:
        out["provider"] = ref.provider
    if ref.reason:
        out["reason"] = ref.reason
    return out


def event_ref_from(data: dict[str, Any]) -> EventRef:
    return EventRef(
        data["event_id"],
        data["type"],
        instant(data["occurred_at"]),
        data.get("provider"),
        data.get("reason"),
    )


def measure_json(measure: Measure) -> dict[str, Any]:
    out = event_ref_json(measure.event)
    assert out is not None
    if measure.channels:
        out["channels"] = [channel.value for channel in measure.channels]
    return out


def measure_from(data: dict[str, Any]) -> Measure:
    return Measure(event_ref_from(data), tuple(CHANNELS[c] for c in data.get("channels", ())))


def regions_json(regions: dict[str, RegionAnswer]) -> dict[str, Any]:
    """Each country's own answer: its status, channels (a platform's) and measures."""
    found = {}
    for region, answer in regions.items():
        own: dict[str, Any] = {"status": answer.status.value}
        if answer.channels is not None:
            own["channels"] = {c.value: v.value for c, v in answer.channels.items()}
        own["measures"] = [measure_json(m) for m in answer.measures]
        found[region] = own
    return found


def regions_from(kind: str, data: dict[str, Any]) -> dict[str, RegionAnswer]:
    statuses = ACCOUNT_STATUS if kind == "account" else AVAILABILITY
    return {
        region: RegionAnswer(
            statuses[own["status"]],
            {CHANNELS[c]: AVAILABILITY[v] for c, v in own["channels"].items()}
            if "channels" in own
            else None,
            tuple(measure_from(m) for m in own["measures"]),
        )
        for region, own in data.items()
    }


def document_json(document: StatusDocument) -> dict[str, Any]:
    if isinstance(document, AccountDocument):
        return {
            "status": document.status.value,
            "since": maybe_iso(document.since),
            "until": maybe_iso(document.until),
            "last_event": event_ref_json(document.last_event),
            "measures": [measure_json(m) for m in document.measures],
            "regions": regions_json(document.regions),
        }
    return {
        "name": document.name,
        "status": document.status.value,
        "channels": {channel.value: value.value for channel, value in document.channels.items()},
        "hosting": [
            {"provider": h.provider, "scope": h.scope.value, "since": event_ref_json(h.since)}
            for h in document.hosting
        ],
        "domain": document.domain,
        "shut_down": document.shut_down,
        "app_stores": {store.value: listing for store, listing in document.app_stores.items()},
        "services": [{"provider": s.provider, "service": s.service} for s in document.services],
        "registered_at": iso(document.registered_at),
        "since": maybe_iso(document.since),
        "last_event": event_ref_json(document.last_event),
        "measures": [measure_json(m) for m in document.measures],
        "regions": regions_json(document.regions),
    }


# Statuses by their values: a listing decodes thousands of documents, and a dict lookup is
# a tenth of an enum's call.
AVAILABILITY = {a.value: a for a in Availability}
ACCOUNT_STATUS = {a.value: a for a in AccountStatus}
CHANNELS = {c.value: c for c in Channel}
STORES = {s.value: s for s in AppStore}
SCOPES = {h.value: h for h in HostingScope}


def document_from_json(kind: str, data: dict[str, Any]) -> StatusDocument:
    if kind == "account":
        return AccountDocument(
            ACCOUNT_STATUS[data["status"]],
            maybe_instant(data["since"]),
            maybe_instant(data["until"]),
            event_ref_from(data["last_event"]) if data["last_event"] else None,
            tuple(measure_from(m) for m in data.get("measures", ())),
            regions_from(kind, data.get("regions", {})),
        )
    last_event = data.get("last_event")
    return PlatformDocument(
        name=data["name"],
        status=AVAILABILITY[data["status"]],
        channels={CHANNELS[c]: AVAILABILITY[v] for c, v in data["channels"].items()},
        hosting=tuple(
            HostEntry(h["provider"], SCOPES[h["scope"]], event_ref_from(h["since"]))
            for h in data["hosting"]
        ),
        domain=data["domain"],
        shut_down=data["shut_down"],
        app_stores={STORES[s]: listing for s, listing in data["app_stores"].items()},
        services=tuple(ServiceEntry(s["provider"], s["service"]) for s in data["services"]),
        registered_at=instant(data["registered_at"]),
        since=maybe_instant(data.get("since")),
        last_event=event_ref_from(last_event) if last_event else None,
        measures=tuple(measure_from(m) for m in data.get("measures", ())),
        regions=regions_from(kind, data.get("regions", {})),
    )


def stored_document(kind: str, text: str) -> StatusDocument:
    """A document as the read models store it (compact JSON text)."""
    return document_from_json(kind, from_json_text(text))


def standing_json(standing: ProviderStanding) -> dict[str, Any]:
    """A provider's standing over a period: its rows of accountability, in seconds."""
    return {
        "provider": standing.provider,
        "subjects": standing.subjects,
        "longest_seconds": standing.time.total_seconds(),
        "bound": [
            {
                "subject": row.subject.key,
                "kind": row.subject.kind,
                "channel": row.channel,
                "region": row.region,
                "seconds": row.time.total_seconds(),
                "measures": row.measures,
                "since": iso(row.since),
                "ongoing": row.ongoing,
            }
            for row in standing.bound
        ],
    }


def status_head(subject: SubjectKey, as_of: datetime, known_at: datetime | None) -> dict[str, Any]:
    """What an answer is about, before its document."""
    return {
        "subject": subject.key,
        "kind": subject.kind,
        "as_of": iso(as_of),
        "known_at": maybe_iso(known_at),
    }


def status_json(status: SubjectStatus) -> dict[str, Any]:
    """An answer as JSON; a document that came from the store undecoded is passed on as it
    was stored (what the fold's `document_json` wrote)."""
    head = status_head(status.subject, status.as_of, status.known_at)
    stored = status.stored
    return head | (from_json_text(stored) if stored is not None else document_json(status.document))


def status_text(status: SubjectStatus) -> str:
    """An answer as JSON text; a document that came from the store undecoded is spliced in as
    stored, never decoded (a listing of thousands)."""
    stored = status.stored
    if stored is None:
        return json_text(status_json(status))
    head = json_text(status_head(status.subject, status.as_of, status.known_at))
    return f"{head[:-1]},{stored[1:]}"


# Facts ------------------------------------------------------------------------------------


def record_json(record: FactRecord) -> dict[str, Any]:
    """A stored fact as one interchange object, with what the store set: event_id,
    recorded_at, position, and recorded_by when known."""
    own = {k: iso(v) if isinstance(v, datetime) else v for k, v in record.fields.items()}
    by = {"recorded_by": record.recorded_by} if record.recorded_by is not None else {}
    return {
        "type": record.type,
        record.subject.kind: record.subject.key,
        **own,
        "event_id": record.event_id,
        "recorded_at": iso(record.recorded_at),
        **by,
        "position": record.position,
    }


def record_from_json(data: dict[str, Any]) -> FactRecord:
    kind = "platform" if "platform" in data else "account"
    subject = SubjectKey.parse_kind(kind, data[kind])
    times = SUBJECT_CLASSES[kind].fact_types()[data["type"]].time_fields()
    own = {
        k: datetime.fromisoformat(v) if k in times else v
        for k, v in data.items()
        if k not in ("type", kind, "event_id", "recorded_at", "recorded_by", "position")
    }
    return FactRecord(
        data["type"],
        subject,
        own,
        data["event_id"],
        datetime.fromisoformat(data["recorded_at"]),
        data["position"],
        data.get("recorded_by"),
    )


def history_json(entry: HistoryEntry) -> dict[str, Any]:
    """A fact as history shows it: its record, and whether (and how) it was retracted."""
    out = record_json(entry.record) | {"retracted": entry.retracted}
    if entry.retraction is not None:
        out["retraction"] = retraction_json(entry.retraction)
    return out


def retraction_json(retraction: RetractionRef) -> dict[str, Any]:
    return {
        "event_id": retraction.event_id,
        "recorded_at": iso(retraction.recorded_at),
        "reason": retraction.reason,
    }


# Intervals, changes, progress ----------------------------------------------------------


def interval_json(interval: Interval) -> dict[str, Any]:
    return {
        "channel": interval.channel,
        "status": interval.status.value,
        "valid_from": iso(interval.valid_from),
        "valid_to": maybe_iso(interval.valid_to),
        "event_id": interval.event_id,
    }


def ends_json(ends: Ends) -> dict[str, Any]:
    return {str(channel): {"from": then, "to": later} for channel, (then, later) in ends.items()}


def change_json(change: Change) -> dict[str, Any]:
    return {
        "subject": change.subject.key,
        "kind": change.subject.kind,
        "changes": ends_json(change.channels),
        "regions": {code: ends_json(ends) for code, ends in change.regions.items()},
        "transitions": [
            {
                "region": t.region,
                "channel": str(t.channel),
                "at": iso(t.at),
                "from": t.before,
                "to": t.after,
                "event_id": t.event.event_id if t.event else None,
                "type": t.event.type if t.event else None,
                "provider": t.event.fields.get("provider") if t.event else None,
            }
            for t in change.transitions
        ],
        "events": [history_json(e) for e in change.events],
    }


def progress_json(progress: Progress, projection: str = "status") -> dict[str, Any]:
    return {
        "projection": projection,
        "generation": progress.generation,
        "position": progress.position,
        "head": progress.head,
        "lag": progress.lag,
        "following": progress.following,
        "last_error": progress.last_error,
        "last_error_at": maybe_iso(progress.last_error_at),
        "failing_since": maybe_iso(progress.failing_since),
    }

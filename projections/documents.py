"""Status documents: the JSON objects the CLI and the API give, and the read models store."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from typing import Any

from domain import Subject
from domain.account import AccountState
from domain.clock import from_micros, iso
from domain.platform import PlatformState
from domain.values import SubjectKey


def event_ref(fact: Subject.Action | None) -> dict[str, Any] | None:
    if fact is None:
        return None
    ref = {"event_id": fact.event_id, "type": fact.type, "occurred_at": iso(fact.occurred_at)}
    provider = getattr(fact, "provider", None)
    if provider:
        ref["provider"] = provider
    if fact.reason:
        ref["reason"] = fact.reason
    return ref


def platform_json(state: PlatformState) -> dict[str, Any]:
    assert state.registration is not None
    return {
        "name": state.registration.name,
        "status": state.overall.value,
        "channels": {channel.value: value.value for channel, value in state.channels.items()},
        "hosting": [
            {
                "provider": host.provider,
                "scope": "full" if host.scope.value == "online" else "partial",
                "since": event_ref(host.since),
            }
            for host in state.hosting.values()
        ],
        "domain": "suspended" if state.domain_suspended else "active",
        "shut_down": state.shut_down is not None,
        "app_stores": {
            store.value: "delisted" if store in state.delisted else "listed"
            for store in state.stores
        },
        "services": [
            {"provider": action.provider, "service": service}  # type: ignore[attr-defined]
            for (_, service), action in state.services.items()
        ],
        "registered_at": iso(state.registration.occurred_at),
    }


def account_json(state: AccountState) -> dict[str, Any]:
    return {
        "status": state.status.value,
        "since": iso(state.since) if state.since else None,
        "until": iso(state.until) if state.until else None,
        "last_event": event_ref(state.cause),
    }


LIBRARY_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def fact_fields(fact: Subject.Fact) -> dict[str, Any]:
    """The fact's own fields in interchange form (UTC times; absent values left out)."""
    out: dict[str, Any] = {}
    for f in fields(fact):  # type: ignore[arg-type]
        if f.name in LIBRARY_FIELDS or f.name == "event_id":
            continue
        value = getattr(fact, f.name)
        if value is None or value == []:
            continue
        out[f.name] = iso(value) if isinstance(value, datetime) else value
    return out


def to_record(fact: Subject.Fact, subject: SubjectKey, position: int | None) -> dict[str, Any]:
    """A stored fact as one interchange object, with the store's event_id, recorded_at, position."""
    return {
        "type": fact.type,
        subject.kind: subject.key,
        **fact_fields(fact),
        "event_id": fact.event_id,
        "recorded_at": iso(fact.recorded_at),
        "position": position,
    }


def history_record(
    fact: Subject.Action,
    subject: SubjectKey,
    position: int | None,
    retraction: Subject.EventRetracted | None,
) -> dict[str, Any]:
    """A fact as history shows it: its record, and whether (and how) it was retracted."""
    record = to_record(fact, subject, position) | {"retracted": retraction is not None}
    if retraction is not None:
        record["retraction"] = {
            "event_id": retraction.event_id,
            "recorded_at": iso(retraction.recorded_at),
            "reason": retraction.reason,
        }
    return record


def timeline_record(row: dict[str, Any]) -> dict[str, Any]:
    """The same, from a row of the timeline read model."""
    record = json.loads(row["record"]) | {"retracted": row["retracted_by"] is not None}
    if row["retracted_by"] is not None:
        record["retraction"] = {
            "event_id": row["retracted_by"],
            "recorded_at": iso(from_micros(row["retracted_at"])),
            "reason": row["retraction_reason"],
        }
    return record

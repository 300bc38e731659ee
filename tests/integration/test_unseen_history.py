"""A history unlike the example (other providers, a domain seizure, a shutdown, facts
arriving out of order, a correction, lines that break rules), imported as users would."""

from __future__ import annotations

import json

from adapters.interchange import parse_lines
from adapters.serialize import status_json
from domain.values import SubjectKey
from tests.helpers import at

# Written in recording order, deliberately not in valid-time order.
LINES = [
    {
        "type": "PlatformRegistered",
        "platform": "forum-x",
        "name": "Forum X",
        "occurred_at": "2019-03-01",
        "hosting_provider": "Frontline CDN",
        "registrar": "NameCo",
        "app_stores": ["google_play"],
    },
    {
        "type": "HostingRestored",
        "platform": "forum-x",
        "occurred_at": "2022-09-06T12:00:00Z",
        "provider": "Shield Networks",
        "event_id": "shield-in",
    },
    {
        "type": "HostingTerminated",
        "platform": "forum-x",
        "occurred_at": "2022-09-03T18:00:00-04:00",
        "provider": "frontline cdn",
        "reason": "imminent threat to life",
        "event_id": "cdn-out",
    },
    {
        "type": "HostingTerminated",
        "platform": "forum-x",
        "occurred_at": "2022-09-09",
        "provider": "Shield Networks",
        "event_id": "shield-out",
    },
    {
        "type": "AppStoreRemoved",
        "platform": "forum-x",
        "store": "google_play",
        "occurred_at": "2021-05-01",
        "provider": "Google Play",
    },
    {
        "type": "DomainSuspended",
        "platform": "forum-x",
        "occurred_at": "2022-09-20",
        "provider": "NameCo",
        "event_id": "seized",
    },
    {
        "type": "HostingRestored",
        "platform": "forum-x",
        "occurred_at": "2022-09-15",
        "provider": "Home Servers",
        "scope": "full",
    },
    {
        "type": "DomainRestored",
        "platform": "forum-x",
        "occurred_at": "2022-10-01",
        "provider": "OtherRegistrar",
    },
    {
        "type": "ServiceTerminated",
        "platform": "forum-x",
        "occurred_at": "2022-09-04",
        "provider": "PayCo",
        "service": "payments",
    },
    {
        "type": "AccountSuspended",
        "account": "chirp:SomeUser",
        "occurred_at": "2022-01-01T00:00:00Z",
        "until": "2022-01-08T00:00:00Z",
        "provider": "Chirp",
    },
    {
        "type": "AccountBanned",
        "account": "chirp:someuser",
        "occurred_at": "2022-02-01",
        "provider": "Chirp",
        "event_id": "ban",
    },
    {
        "type": "EventRetracted",
        "retracts": "ban",
        "reason": "it was another account",
        "account": "chirp:SOMEUSER",
    },
    {
        "type": "AccountReinstated",
        "account": "chirp:someuser",
        "occurred_at": "2022-03-01",
        "provider": "Chirp",
    },
    {
        "type": "AppStoreRemoved",
        "platform": "forum-x",
        "store": "apple_app_store",
        "occurred_at": "2022-01-01",
        "provider": "Apple",
    },
    {
        "type": "PlatformShutDown",
        "platform": "forum-x",
        "occurred_at": "2023-01-01",
        "provider": "Forum X operators",
    },
    {
        "type": "HostingTerminated",
        "platform": "forum-x",
        "occurred_at": "2022-09-04",
        "provider": "Shield Networks",
    },
]
# forum-x web status (android follows min(partial, web) after the delisting).
EXPECTED = [
    ("2020-01-01T00:00:00Z", "online", {"web": "online", "android": "online"}),
    ("2022-09-03T21:00:00Z", "partial", {"web": "online", "android": "partial"}),
    ("2022-09-03T22:00:00Z", "offline", {"web": "offline", "android": "offline"}),
    ("2022-09-07T00:00:00Z", "partial", {"web": "online", "android": "partial"}),
    ("2022-09-10T00:00:00Z", "offline", {"web": "offline", "android": "offline"}),
    ("2022-09-16T00:00:00Z", "partial", {"web": "online", "android": "partial"}),
    ("2022-09-21T00:00:00Z", "offline", {"web": "offline", "android": "offline"}),
    ("2022-10-02T00:00:00Z", "partial", {"web": "online", "android": "partial"}),
    ("2023-01-02T00:00:00Z", "offline", {"web": "offline", "android": "offline"}),
]


def test_an_unseen_history_gives_the_statuses_and_rejections_the_spec_implies(tracker):
    parsed = list(parse_lines(json.dumps(line) for line in LINES))
    outcome = tracker.record([p.fact for p in parsed], atomic=False)
    rejected = {r.label: r for r in outcome.rejected}
    assert sorted(rejected) == [13, 14, 16]
    assert "is active at 2022-03-01" in rejected[13].error  # the ban was retracted
    assert "not registered in apple_app_store" in rejected[14].error
    assert "does not host forum-x at 2022-09-04" in rejected[16].error

    forum = SubjectKey.platform("forum-x")
    for as_of, overall, channels in EXPECTED:
        document = status_json(tracker.queries.status(forum, at(as_of)))
        assert (document["status"], document["channels"]) == (
            overall,
            channels,
        ), as_of

    user = SubjectKey.account("chirp:someUSER")
    assert tracker.queries.status(user).subject.key == "chirp:SomeUser"
    assert [
        tracker.queries.status(user, at(t)).status
        for t in ("2022-01-02T00:00:00Z", "2022-01-09T00:00:00Z", "2022-02-02T00:00:00Z")
    ] == ["suspended", "active", "active"]

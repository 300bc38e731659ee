"""The spec's availability rules for platforms, one at a time."""

from __future__ import annotations

import pytest

from domain import Platform
from domain.clock import now
from domain.errors import RuleViolation
from domain.values import SubjectKey
from tests.helpers import at, fact, record, registration


def platform(app_stores=("apple_app_store", "google_play"), **fields) -> Platform:
    subject = Platform.track(SubjectKey.platform("site"), now())
    fields.setdefault("hosting_provider", "Host A")
    record(subject, registration(app_stores=list(app_stores), **fields))
    return subject


def channels(subject: Platform, as_of: str = "2030-01-01") -> dict[str, str]:
    return {
        c.value: v.value
        for c, v in subject.state_at(at(as_of + "T00:00:00+00:00")).channels.items()
    }


def overall(subject: Platform, as_of: str = "2030-01-01") -> str:
    return subject.state_at(at(as_of + "T00:00:00+00:00")).overall.value


def test_a_registered_platform_is_online_on_the_channels_of_its_stores():
    assert channels(platform()) == {"web": "online", "ios": "online", "android": "online"}
    assert channels(platform(app_stores=["google_play"])) == {"web": "online", "android": "online"}
    assert channels(platform(app_stores=[])) == {"web": "online"}


def test_losing_the_only_host_takes_every_channel_offline():
    subject = platform()
    record(subject, fact("HostingTerminated", "site", occurred_at="2021-01-01", provider="Host A"))
    assert channels(subject) == {"web": "offline", "ios": "offline", "android": "offline"}
    assert overall(subject) == "offline"
    assert overall(subject, "2020-12-31") == "online"


def test_host_names_match_ignoring_case_and_spacing():
    subject = platform()
    record(subject, fact("HostingTerminated", "site", occurred_at="2021-01-01", provider="host  a"))
    assert overall(subject) == "offline"


def test_an_unnamed_host_is_whoever_terminates_first():
    subject = platform(hosting_provider=None)
    record(subject, fact("HostingTerminated", "site", occurred_at="2021-01-01", provider="Anyone"))
    assert overall(subject) == "offline"


def test_terminating_a_provider_that_does_not_host_is_rejected():
    subject = platform()
    with pytest.raises(RuleViolation, match="'Host B' does not host site") as rejected:
        record(
            subject, fact("HostingTerminated", "site", occurred_at="2021-01-01", provider="Host B")
        )
    assert rejected.value.conflicts_with == subject.registration.event_id


def test_terminating_twice_names_the_first_termination():
    subject = platform()
    first = record(
        subject, fact("HostingTerminated", "site", occurred_at="2021-01-01", provider="Host A")
    )
    with pytest.raises(RuleViolation, match="no longer hosts") as rejected:
        record(
            subject, fact("HostingTerminated", "site", occurred_at="2021-02-01", provider="Host A")
        )
    assert rejected.value.conflicts_with == first.event_id


def test_partial_hosting_makes_every_channel_partial_and_full_hosting_wins():
    subject = platform()
    record(subject, fact("HostingTerminated", "site", occurred_at="2021-01-01", provider="Host A"))
    record(
        subject,
        fact("HostingRestored", "site", occurred_at="2021-01-02", provider="B", scope="partial"),
    )
    assert channels(subject) == {"web": "partial", "ios": "partial", "android": "partial"}
    record(subject, fact("HostingRestored", "site", occurred_at="2021-01-03", provider="C"))
    assert overall(subject) == "online"
    record(subject, fact("HostingTerminated", "site", occurred_at="2021-01-04", provider="C"))
    assert overall(subject) == "partial"


def test_a_delisted_app_still_works_for_those_who_installed_it():
    subject = platform()
    record(subject, fact("AppStoreRemoved", "site", occurred_at="2021-01-01", store="google_play"))
    assert channels(subject) == {"web": "online", "ios": "online", "android": "partial"}
    assert overall(subject) == "partial"
    record(
        subject, fact("AppStoreReinstated", "site", occurred_at="2021-02-01", store="google_play")
    )
    assert overall(subject) == "online"


def test_listing_changes_must_alternate():
    subject = platform()
    with pytest.raises(RuleViolation, match="is listed in google_play"):
        record(
            subject,
            fact("AppStoreReinstated", "site", occurred_at="2021-01-01", store="google_play"),
        )
    removed = record(
        subject, fact("AppStoreRemoved", "site", occurred_at="2021-01-01", store="google_play")
    )
    with pytest.raises(RuleViolation, match="already delisted") as rejected:
        record(
            subject, fact("AppStoreRemoved", "site", occurred_at="2021-01-02", store="google_play")
        )
    assert rejected.value.conflicts_with == removed.event_id


def test_a_store_the_platform_was_not_registered_in_is_rejected():
    subject = platform(app_stores=["google_play"])
    with pytest.raises(RuleViolation, match="not registered in apple_app_store"):
        record(
            subject,
            fact("AppStoreRemoved", "site", occurred_at="2021-01-01", store="apple_app_store"),
        )


def test_a_suspended_domain_takes_the_backend_offline_until_restored():
    subject = platform()
    record(subject, fact("DomainSuspended", "site", occurred_at="2021-01-01"))
    assert overall(subject) == "offline"
    with pytest.raises(RuleViolation, match="already suspended"):
        record(subject, fact("DomainSuspended", "site", occurred_at="2021-01-02"))
    record(subject, fact("DomainRestored", "site", occurred_at="2021-01-03"))
    assert overall(subject) == "online"
    with pytest.raises(RuleViolation, match="is not suspended"):
        record(subject, fact("DomainRestored", "site", occurred_at="2021-01-04"))


def test_shut_down_overrides_every_layer_and_relaunch_returns_to_them():
    subject = platform()
    record(
        subject, fact("AppStoreRemoved", "site", occurred_at="2021-01-01", store="apple_app_store")
    )
    record(subject, fact("PlatformShutDown", "site", occurred_at="2021-01-02"))
    assert overall(subject) == "offline"
    with pytest.raises(RuleViolation, match="already shut down"):
        record(subject, fact("PlatformShutDown", "site", occurred_at="2021-01-03"))
    record(subject, fact("PlatformRelaunched", "site", occurred_at="2021-01-04"))
    assert channels(subject) == {"web": "online", "ios": "partial", "android": "online"}
    with pytest.raises(RuleViolation, match="is not shut down"):
        record(subject, fact("PlatformRelaunched", "site", occurred_at="2021-01-05"))


def test_supporting_services_are_informational_and_never_rejected():
    subject = platform()
    record(subject, fact("ServiceTerminated", "site", occurred_at="2021-01-01", service="payments"))
    record(subject, fact("ServiceTerminated", "site", occurred_at="2021-01-02", service="payments"))
    record(subject, fact("ServiceRestored", "site", occurred_at="2021-01-03", service="cdn"))
    record(subject, fact("ServiceRestored", "site", occurred_at="2021-01-04", service="cdn"))
    assert overall(subject) == "online"
    assert list(subject.state_at(at("2030-01-01T00:00:00+00:00")).services) == [("p", "cdn")]


def test_a_platform_is_registered_once():
    subject = platform()
    with pytest.raises(RuleViolation, match="already registered"):
        record(subject, fact("PlatformRegistered", "site", name="Again", occurred_at="2019-01-01"))


def test_nothing_happens_to_a_platform_before_its_registration():
    subject = platform()
    with pytest.raises(RuleViolation, match="before site was registered") as rejected:
        record(subject, fact("DomainSuspended", "site", occurred_at="2019-12-31"))
    assert rejected.value.conflicts_with == subject.registration.event_id
    assert subject.state_at(at("2019-06-01T00:00:00+00:00")).registration is None

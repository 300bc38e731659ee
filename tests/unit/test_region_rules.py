"""The spec's regions and measures in force, one rule at a time."""

from __future__ import annotations

import pytest

from domain import Account, Platform
from domain.clock import now
from domain.errors import RuleViolation
from domain.values import SubjectKey
from projections.documents import document, in_region
from tests.helpers import at, fact, record, registration


def platform() -> Platform:
    subject = Platform.track(SubjectKey.platform("site"), now())
    record(subject, registration(hosting_provider="Host A"))
    return subject


def act(subject: Platform | Account, kind: str, day: str, **fields) -> None:
    key = "net:x" if isinstance(subject, Account) else "site"
    record(subject, fact(kind, key, occurred_at=f"2021-01-{day}", **fields))


def answer(subject, day: str, region: str | None = None) -> dict:
    """Status, channels and measures (type and provider: channels) in a country or worldwide."""
    found = document(subject.state_at(at(f"2021-01-{day}T12:00:00+00:00")))
    if region is not None:
        found = in_region(found, region)
    return {
        "status": found.status.value,
        "channels": {c.value: v.value for c, v in getattr(found, "channels", {}).items()},
        "measures": {
            (m.event.type, m.event.provider): [c.value for c in m.channels] for m in found.measures
        },
        "regions": sorted(found.regions),
    }


def refused(subject, kind: str, day: str, **fields) -> RuleViolation:
    with pytest.raises(RuleViolation) as refusal:
        act(subject, kind, day, **fields)
    return refusal.value


def test_a_block_takes_a_platform_offline_in_its_country_only():
    x = platform()
    act(x, "AccessBlocked", "10", provider="Anatel", regions=["BR"])
    assert answer(x, "11", "BR") == {
        "status": "offline",
        "channels": {"web": "offline", "ios": "offline", "android": "offline"},
        "measures": {("AccessBlocked", "Anatel"): ["web", "ios", "android"]},
        "regions": [],
    }
    worldwide = answer(x, "11")
    assert worldwide["status"] == "online" and worldwide["regions"] == ["BR"]
    assert answer(x, "11", "FR")["status"] == "online"
    act(x, "AccessRestored", "20", provider="Anatel", regions=["BR"])
    assert answer(x, "21", "BR")["status"] == "online" and answer(x, "21")["regions"] == []


def test_a_block_of_the_same_scope_is_refused_and_one_of_the_other_scope_replaces_it():
    x = platform()
    act(x, "AccessBlocked", "10", provider="Anatel", regions=["BR"], scope="partial")
    assert answer(x, "11", "BR")["status"] == "partial"
    refusal = refused(x, "AccessBlocked", "12", provider="Anatel", regions=["BR"], scope="partial")
    assert "already blocked (partial) in BR" in str(refusal) and refusal.conflicts_with
    act(x, "AccessBlocked", "13", provider="Anatel", regions=["BR"])  # throttling, then a block
    assert answer(x, "14", "BR")["status"] == "offline"


def test_lifting_a_block_where_there_is_none_is_refused_naming_the_country():
    x = platform()
    act(x, "AccessBlocked", "10", provider="Anatel", regions=["BR"])
    refusal = refused(x, "AccessRestored", "12", provider="Anatel", regions=["BR", "NG"])
    assert "not blocked in NG" in str(refusal)


def test_a_regional_removal_must_change_every_named_country():
    x = platform()
    act(x, "AppStoreRemoved", "10", store="apple_app_store", regions=["US"])
    refusal = refused(x, "AppStoreRemoved", "11", store="apple_app_store", regions=["FR", "US"])
    assert "already delisted from apple_app_store in US" in str(refusal)
    assert answer(x, "12", "US")["channels"]["ios"] == "partial"
    assert answer(x, "12", "FR")["channels"]["ios"] == "online"


def test_a_worldwide_action_must_change_some_country_and_then_sets_every_one():
    x = platform()
    act(x, "AppStoreRemoved", "10", store="google_play", regions=["US"])
    act(x, "AppStoreRemoved", "11", store="google_play")  # listed elsewhere: it changes them
    assert answer(x, "12")["channels"]["android"] == "partial"
    assert answer(x, "12")["regions"] == [] and answer(x, "12", "US") == answer(x, "12")
    refusal = refused(x, "AppStoreRemoved", "13", store="google_play")
    assert "already delisted from google_play by event" in str(refusal)
    act(x, "AppStoreReinstated", "14", store="google_play", regions=["FR"])
    assert answer(x, "15", "FR")["channels"]["android"] == "online"
    act(x, "AppStoreReinstated", "16", store="google_play")  # delisted elsewhere
    assert answer(x, "17")["regions"] == []


def test_a_withdrawal_from_a_market_outranks_the_store_removals_there():
    x = platform()
    act(x, "PlatformShutDown", "10", provider="Operator", regions=["US"])
    act(x, "AppStoreRemoved", "10", provider="Apple", store="apple_app_store", regions=["US"])
    us = answer(x, "11", "US")
    assert us["status"] == "offline"
    assert us["measures"] == {("PlatformShutDown", "Operator"): ["web", "ios", "android"]}
    act(x, "PlatformRelaunched", "12", provider="Operator", regions=["US"])
    assert answer(x, "13", "US")["measures"] == {("AppStoreRemoved", "Apple"): ["ios"]}
    refusal = refused(x, "PlatformRelaunched", "14", provider="Operator", regions=["US"])
    assert "not shut down in US" in str(refusal)


def test_a_domain_suspension_and_a_host_leaving_both_bind_while_both_hold():
    gab = platform()
    act(gab, "HostingTerminated", "10", provider="Host A")
    act(gab, "DomainSuspended", "10", provider="Registrar")
    assert answer(gab, "11")["measures"] == {
        ("HostingTerminated", "Host A"): ["web", "ios", "android"],
        ("DomainSuspended", "Registrar"): ["web", "ios", "android"],
    }


def test_a_partial_restoration_mitigates_but_the_termination_stays_the_cause():
    parler = platform()
    act(parler, "HostingTerminated", "10", provider="Host A")
    act(parler, "HostingRestored", "12", provider="Front", scope="partial")
    assert answer(parler, "13")["status"] == "partial"
    assert set(answer(parler, "13")["measures"]) == {("HostingTerminated", "Host A")}
    act(parler, "HostingRestored", "14", provider="Host B")  # back in full: settled
    act(parler, "HostingTerminated", "16", provider="Host B")
    assert set(answer(parler, "17")["measures"]) == {("HostingTerminated", "Host B")}


def test_a_termination_that_changed_nothing_still_counts_once_hosting_falls():
    site = platform()
    act(site, "HostingRestored", "05", provider="Host B")  # two hosts in full
    act(site, "HostingTerminated", "10", provider="Host A")
    assert answer(site, "11")["measures"] == {}
    act(site, "HostingTerminated", "12", provider="Host B")
    assert set(answer(site, "13")["measures"]) == {
        ("HostingTerminated", "Host A"),
        ("HostingTerminated", "Host B"),
    }


def account() -> Account:
    return Account.track(SubjectKey.account("net:x"), now())


def test_a_withheld_account_is_withheld_in_its_countries_and_active_elsewhere():
    rt = account()
    act(rt, "AccountWithheld", "01", provider="YouTube", regions=["FR", "DE"])
    assert answer(rt, "02", "FR")["status"] == "withheld"
    assert answer(rt, "02", "FR")["measures"] == {("AccountWithheld", "YouTube"): []}
    assert answer(rt, "02", "US")["status"] == "active"
    assert answer(rt, "02")["regions"] == ["DE", "FR"]
    act(rt, "AccountSuspended", "05", provider="YouTube")  # a worldwide measure outranks it
    assert answer(rt, "06", "FR")["measures"] == {("AccountSuspended", "YouTube"): []}
    assert answer(rt, "06")["regions"] == []


def test_withholding_twice_or_lifting_what_is_not_withheld_is_refused():
    rt = account()
    act(rt, "AccountWithheld", "01", provider="YouTube", regions=["FR"])
    assert "already withheld in FR" in str(
        refused(rt, "AccountWithheld", "02", provider="YouTube", regions=["FR"])
    )
    assert "not withheld in US" in str(
        refused(rt, "AccountWithholdingLifted", "03", provider="YouTube", regions=["US"])
    )

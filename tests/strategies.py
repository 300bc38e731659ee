"""Hypothesis strategies: random histories of facts, many of them invalid, at random times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from domain import ACTION_TYPES, Account, Platform
from service.recording import NewFact
from tests.helpers import fact

START = datetime(2021, 1, 1, tzinfo=UTC)
PROVIDERS = ["H", "K", "L"]
STORES = ["apple_app_store", "google_play"]
COUNTRIES = ["BR", "FR", "US"]  # few, so that regional facts meet
regions = st.lists(st.sampled_from(COUNTRIES), min_size=1, max_size=2, unique=True)
scopes = st.sampled_from(["full", "partial"])


def maybe_regional(**fields: st.SearchStrategy) -> Callable[[], st.SearchStrategy]:
    """Fields of an action that acts everywhere or, half the time, in some countries."""
    return lambda: st.fixed_dictionaries(fields, optional={"regions": regions})


# What each action type needs besides its provider, drawn at random.
EXTRA_FIELDS = {
    "HostingRestored": lambda: st.fixed_dictionaries({"scope": scopes}),
    "AppStoreRemoved": maybe_regional(store=st.sampled_from(STORES)),
    "AppStoreReinstated": maybe_regional(store=st.sampled_from(STORES)),
    "PlatformShutDown": maybe_regional(),
    "PlatformRelaunched": maybe_regional(),
    "AccessBlocked": lambda: st.fixed_dictionaries({"regions": regions, "scope": scopes}),
    "AccessRestored": lambda: st.fixed_dictionaries({"regions": regions}),
    "ServiceTerminated": lambda: st.just({"service": "cdn"}),
    "ServiceRestored": lambda: st.just({"service": "cdn"}),
    "AccountWithheld": lambda: st.fixed_dictionaries({"regions": regions}),
    "AccountWithholdingLifted": lambda: st.fixed_dictionaries({"regions": regions}),
}
# Every platform action but the registration (drawn histories start registered).
PLATFORM_ACTIONS = [
    name for name, kind in ACTION_TYPES.items() if kind is Platform and name != "PlatformRegistered"
]
ACCOUNT_ACTIONS = [name for name, kind in ACTION_TYPES.items() if kind is Account]


def moment(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


def distinct_minutes(events: int) -> st.SearchStrategy[list[int]]:
    """Up to `events` distinct valid times, as minutes after START."""
    return st.lists(st.integers(1, 10_000), min_size=1, max_size=events, unique=True)


@st.composite
def platform_facts(draw, events: int = 25) -> list[NewFact]:
    """Random platform actions (many invalid) at random, distinct valid times."""
    facts = []
    for minute in draw(distinct_minutes(events)):
        kind = draw(st.sampled_from(PLATFORM_ACTIONS))
        extra = draw(EXTRA_FIELDS[kind]()) if kind in EXTRA_FIELDS else {}
        provider = draw(st.sampled_from(PROVIDERS))
        facts.append(fact(kind, "site", occurred_at=moment(minute), provider=provider, **extra))
    return facts


@st.composite
def account_facts(draw, events: int = 20) -> list[NewFact]:
    facts = []
    for minute in draw(distinct_minutes(events)):
        kind = draw(st.sampled_from(ACCOUNT_ACTIONS))
        extra = draw(EXTRA_FIELDS[kind]()) if kind in EXTRA_FIELDS else {}
        if kind == "AccountSuspended" and draw(st.booleans()):
            extra["until"] = moment(minute + draw(st.integers(1, 3000)))
        facts.append(fact(kind, "net:x", occurred_at=moment(minute), **extra))
    return facts


# One subject's history: a platform's or an account's facts.
subject_histories = st.one_of(platform_facts(), account_facts())


@st.composite
def store_histories(draw):
    """A platform's and an account's random facts interleaved, then a few retractions (which
    of the accepted facts, as shares of their number)."""
    facts = draw(st.permutations(draw(platform_facts(12)) + draw(account_facts(8))))
    retract = draw(st.lists(st.floats(0, 1, exclude_max=True), max_size=4))
    return facts, retract

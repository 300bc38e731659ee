"""How the pages and the CLI's tables word things for readers (JSON keeps the names)."""

from __future__ import annotations

import re
from typing import Any

from domain import Account, Platform

# What a measure in force did, in a sentence whose subject is its provider.
DEEDS = {
    Platform.HostingTerminated.__name__: "terminated hosting",
    Platform.DomainSuspended.__name__: "suspended the domain",
    Platform.PlatformShutDown.__name__: "shut it down",
    Platform.AccessBlocked.__name__: "blocked access",
    Platform.AppStoreRemoved.__name__: "delisted the app",
    Account.AccountSuspended.__name__: "suspended the account",
    Account.AccountBanned.__name__: "banned the account",
    Account.AccountWithheld.__name__: "withheld the account",
}


def words(event_type: str) -> str:
    """`HostingTerminated` -> `hosting terminated`."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", event_type).lower()


def measure_words(measure: dict[str, Any]) -> str:
    """A measure in force (as JSON gives it) in words: `Amazon Web Services terminated
    hosting on 2021-01-11`, with the channels it binds unless it binds every one."""
    deed = DEEDS.get(measure["type"], words(measure["type"]))
    text = f"{measure.get('provider') or 'its operator'} {deed} on {measure['occurred_at'][:10]}"
    channels = measure.get("channels") or []
    return text + (f" ({', '.join(channels)})" if channels and len(channels) < 3 else "")

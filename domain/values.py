"""Value objects of the domain: subjects' keys, statuses, channels, app stores."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Literal
from uuid import UUID, uuid5

# Fixed namespace for the project's UUID5s (aggregate ids and derived event ids).
NAMESPACE = UUID("6f1c6a52-3d0e-5b8a-9a41-2f5d1e7c9b30")

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # matched whole (fullmatch), never with `$`
HANDLE = re.compile(r"[^\s:/][^\s/]{0,199}")
# Scripts that one handle may mix: Japanese writes with all three.
SCRIPT_FAMILIES = {"HIRAGANA": "JAPANESE", "KATAKANA": "JAPANESE", "CJK": "JAPANESE"}
UNSPECIFIED_PROVIDER = "unspecified provider"


class Availability(StrEnum):
    """A platform channel's availability, ordered offline < partial < online."""

    OFFLINE = "offline"
    PARTIAL = "partial"
    ONLINE = "online"

    @property
    def rank(self) -> int:
        """0 for the worst; a day or a period shows the lowest rank it had."""
        return _RANK[self]

    @property
    def available(self) -> bool:
        """Only `online` counts as available: `partial` is not online."""
        return self is Availability.ONLINE

    @classmethod
    def least(cls, *values: Availability) -> Availability:
        return min(values, key=_RANK.__getitem__)


class AccountStatus(StrEnum):
    """An account's status, ordered banned < suspended < withheld < active (withheld: in a
    country, by its platform, while it stays active elsewhere)."""

    BANNED = "banned"
    SUSPENDED = "suspended"
    WITHHELD = "withheld"
    ACTIVE = "active"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def available(self) -> bool:
        return self is AccountStatus.ACTIVE


Status = Availability | AccountStatus
_RANK: dict[Status, int] = {
    Availability.OFFLINE: 0,
    Availability.PARTIAL: 1,
    Availability.ONLINE: 2,
    AccountStatus.BANNED: 0,
    AccountStatus.SUSPENDED: 1,
    AccountStatus.WITHHELD: 1,
    AccountStatus.ACTIVE: 2,
}
STATUSES: tuple[Status, ...] = (*Availability, *AccountStatus)


def status_value(text: str) -> Status:
    """A status by its name (`online`, `banned`, ...); ValueError for anything else."""
    for status in STATUSES:
        if status.value == text:
            return status
    raise ValueError(f"unknown status {text!r}; expected one of {', '.join(STATUSES)}")


class HostingScope(StrEnum):
    """How fully a host serves a platform: `partial` answers with reduced service."""

    FULL = "full"
    PARTIAL = "partial"

    @property
    def availability(self) -> Availability:
        return Availability.ONLINE if self is HostingScope.FULL else Availability.PARTIAL

    @property
    def blocked(self) -> Availability:
        """A platform's reach where its access is blocked with this scope (`partial`:
        throttled, or blocked by some networks only)."""
        return Availability.OFFLINE if self is HostingScope.FULL else Availability.PARTIAL


class Channel(StrEnum):
    WEB = "web"
    IOS = "ios"
    ANDROID = "android"


class AppStore(StrEnum):
    APPLE = "apple_app_store"
    GOOGLE = "google_play"

    @property
    def channel(self) -> Channel:
        return Channel.IOS if self is AppStore.APPLE else Channel.ANDROID

    @classmethod
    def of(cls, channel: Channel) -> AppStore:
        """The store an app channel is listed in."""
        return AppStore.APPLE if channel is Channel.IOS else AppStore.GOOGLE


class InvalidSubject(ValueError):
    """A subject key that is neither a platform slug nor an account key."""


SubjectKind = Literal["platform", "account"]


@dataclass(frozen=True)
class SubjectKey:
    """A platform slug (`parler`) or an account key (`twitter:realDonaldTrump`).

    `identity` is what makes two keys the same subject: account handles are
    case-insensitive, so `identity` is lower-cased while `key` keeps the spelling.
    """

    kind: SubjectKind
    key: str

    @classmethod
    def platform(cls, slug: str) -> SubjectKey:
        if not SLUG.fullmatch(slug):
            raise InvalidSubject(
                f"invalid platform slug {slug!r}: lower-case letters, digits and '-', "
                "starting with a letter or digit, at most 63 characters"
            )
        return cls("platform", slug)

    @classmethod
    def account(cls, key: str) -> SubjectKey:
        """An account key, in Unicode NFC; refused when its handle could pass for another:
        invisible or bidirectional-control characters, or letters of several scripts."""
        return cls("account", checked_account_key(key))

    @classmethod
    def parse_kind(cls, kind: str, key: str) -> SubjectKey:
        """A key of a known kind (`platform` or `account`), checked."""
        if kind == "platform":
            return cls.platform(key)
        if kind == "account":
            return cls.account(key)
        raise InvalidSubject(f"unknown kind of subject {kind!r}: platform or account")

    @classmethod
    def parse(cls, text: str) -> SubjectKey:
        """A key as users type it: an account key has a colon, a slug has none."""
        return cls.account(text) if ":" in text else cls.platform(text)

    @property
    def identity(self) -> str:
        """What keys are compared by: an account's after NFKC and case folding, so that
        full-width, mathematical and other compatibility spellings are the same account."""
        return account_identity(self.key) if self.kind == "account" else self.key

    @property
    def id(self) -> UUID:
        return subject_id(self.kind, self.identity)


@lru_cache(maxsize=65536)  # keys repeat: a subject's facts all name it
def checked_account_key(key: str) -> str:
    """The account key in NFC, or `InvalidSubject` saying why it cannot be one."""
    key = unicodedata.normalize("NFC", key)
    platform, sep, handle = key.partition(":")
    if not sep or not SLUG.fullmatch(platform.lower()) or not HANDLE.fullmatch(handle):
        raise InvalidSubject(
            f"invalid account key {key!r}: expected '<platform-slug>:<handle>' (no spaces "
            "or '/'), for example 'twitter:realDonaldTrump'"
        )
    hidden = [c for c in handle if unicodedata.category(c) in ("Cf", "Cc", "Co", "Cn")]
    if hidden:
        names = ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(hidden))
        raise InvalidSubject(
            f"invalid account key {key!r}: the handle holds invisible or control "
            f"characters ({names})"
        )
    scripts = {script(c) for c in handle if c.isalpha()}
    if len(scripts) > 1:
        raise InvalidSubject(
            f"invalid account key {key!r}: the handle mixes scripts "
            f"({', '.join(sorted(scripts))}), as look-alike spellings do"
        )
    return key


@lru_cache(maxsize=65536)
def account_identity(key: str) -> str:
    return unicodedata.normalize("NFKC", key).casefold()


@lru_cache(maxsize=65536)
def subject_id(kind: str, identity: str) -> UUID:
    return uuid5(NAMESPACE, f"{kind}:{identity}")


def script(letter: str) -> str:
    """The script a letter is written in, from its Unicode name (LATIN, CYRILLIC, ...)."""
    name = unicodedata.name(letter, "UNKNOWN").split(" ")[0]
    return SCRIPT_FAMILIES.get(name, name)


def provider_identity(provider: str) -> str:
    """Providers are matched ignoring case and runs of spaces ('amazon  web services')."""
    return " ".join(provider.split()).casefold()

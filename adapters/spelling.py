"""Look-alike account handles: two handles of one platform that read the same (`rn` and `m`,
Latin `a` and Cyrillic U+0430) have the same Unicode TS #39 skeleton, as ICU computes it, once
compared as keys are (after NFKC and case folding). The store keeps each account's
skeleton in its event-id index, under an id no event can have, so that a write finds an
existing look-alike in the same lookup as its duplicates."""

from __future__ import annotations

from functools import lru_cache

import icu

from domain.values import SubjectKey

# Event ids holding a control character are refused at input: no event's id starts so.
PREFIX = "\x01look-alike:"
SPOOF = icu.SpoofChecker()


@lru_cache(maxsize=65536)
def look_alike_id(key: SubjectKey) -> str | None:
    """The index id an account shares with every account it could pass for (None for a
    platform: slugs are plain lower-case ASCII)."""
    if key.kind != "account":
        return None
    platform, _, handle = key.identity.partition(":")
    return f"{PREFIX}{platform}:{SPOOF.getSkeleton(0, handle)}"

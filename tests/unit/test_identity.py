"""Subjects are matched whole: no trailing newline, no invisible or look-alike handles."""

from __future__ import annotations

import re

import pytest

from adapters.interchange import InvalidInput, parse_instant, to_new_fact
from domain.values import InvalidSubject, SubjectKey


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("parler\n", "invalid platform slug"),
        ("twitter:realDonaldTrump\n", "no spaces"),
        ("twitter:real\u200bDonaldTrump", "U+200B"),  # zero-width space
        ("twitter:\u202eevil", "U+202E"),  # right-to-left override
        ("twitter:p\u0430ypal", "mixes scripts"),  # a Cyrillic a (U+0430) among Latin letters
        ("twitter:some/path", "no spaces or '/'"),
    ],
)
def test_spoofing_keys_are_refused(text, why):
    with pytest.raises(InvalidSubject, match=re.escape(why)):
        SubjectKey.parse(text)
    with pytest.raises(InvalidInput):
        kind = "account" if ":" in text else "platform"
        to_new_fact(
            {
                "type": "AccountBanned" if kind == "account" else "DomainSuspended",
                kind: text,
                "occurred_at": "2021-01-01",
                "provider": "P",
            }
        )


def test_ordinary_handles_keep_their_identity_rule():
    assert SubjectKey.parse("twitter:realDonaldTrump").identity == "twitter:realdonaldtrump"
    assert SubjectKey.parse("x:山田たろう").key == "x:山田たろう"  # one writing system
    composed, decomposed = SubjectKey.parse("x:Am\u00e9lie"), SubjectKey.parse("x:Ame\u0301lie")
    assert composed == decomposed and composed.id == decomposed.id  # Unicode NFC


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_instants_past_the_calendar_in_utc_are_refused_clearly(text):
    with pytest.raises(ValueError, match="outside the calendar"):
        parse_instant(text)

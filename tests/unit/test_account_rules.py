"""The spec's rules for accounts: suspensions (timed or not), bans, reinstatements."""

from __future__ import annotations

import pytest

from domain import Account
from domain.clock import now
from domain.errors import RuleViolation
from domain.values import SubjectKey
from tests.helpers import at, fact, record

KEY = "net:Someone"


def account() -> Account:
    return Account.track(SubjectKey.account(KEY), now())


def status(subject: Account, as_of: str) -> str:
    return subject.state_at(at(as_of)).status.value


def test_an_account_is_active_before_any_event():
    subject = account()
    assert status(subject, "2021-01-01T00:00:00Z") == "active"
    with pytest.raises(RuleViolation, match=r"is active at .* \(no earlier event\)"):
        record(subject, fact("AccountReinstated", KEY, occurred_at="2021-01-01"))


def test_a_timed_suspension_ends_by_itself_at_until():
    subject = account()
    record(
        subject,
        fact(
            "AccountSuspended",
            KEY,
            occurred_at="2021-01-01T00:00:00Z",
            until="2021-01-01T12:00:00Z",
        ),
    )
    assert status(subject, "2020-12-31T23:59:59Z") == "active"
    assert status(subject, "2021-01-01T00:00:00Z") == "suspended"
    assert status(subject, "2021-01-01T11:59:59Z") == "suspended"
    assert status(subject, "2021-01-01T12:00:00Z") == "active"


def test_reinstating_after_a_timed_suspension_ran_out_is_rejected_naming_it():
    subject = account()
    suspended = record(
        subject,
        fact(
            "AccountSuspended",
            KEY,
            occurred_at="2021-01-01T00:00:00Z",
            until="2021-01-01T12:00:00Z",
        ),
    )
    with pytest.raises(RuleViolation, match="ran out at 2021-01-01T12:00:00Z") as rejected:
        record(subject, fact("AccountReinstated", KEY, occurred_at="2021-01-01T13:00:00Z"))
    assert rejected.value.conflicts_with == suspended.event_id
    record(subject, fact("AccountReinstated", KEY, occurred_at="2021-01-01T06:00:00Z"))
    assert status(subject, "2021-01-01T07:00:00Z") == "active"


def test_a_later_suspension_replaces_the_earlier_one():
    subject = account()
    record(
        subject,
        fact(
            "AccountSuspended",
            KEY,
            occurred_at="2021-01-01T00:00:00Z",
            until="2021-01-02T00:00:00Z",
        ),
    )
    record(subject, fact("AccountSuspended", KEY, occurred_at="2021-01-01T16:00:00Z"))
    assert status(subject, "2021-03-01T00:00:00Z") == "suspended"


def test_until_must_be_later_than_occurred_at():
    with pytest.raises(RuleViolation, match="must be later than occurred_at"):
        record(
            account(), fact("AccountSuspended", KEY, occurred_at="2021-01-02", until="2021-01-01")
        )


def test_a_banned_account_can_be_neither_suspended_nor_banned_again():
    subject = account()
    banned = record(subject, fact("AccountBanned", KEY, occurred_at="2021-01-01"))
    for again in ("AccountSuspended", "AccountBanned"):
        with pytest.raises(RuleViolation, match="is banned") as rejected:
            record(subject, fact(again, KEY, occurred_at="2021-02-01"))
        assert rejected.value.conflicts_with == banned.event_id
    record(subject, fact("AccountReinstated", KEY, occurred_at="2021-03-01"))
    assert status(subject, "2021-03-02T00:00:00Z") == "active"


def test_a_suspended_account_can_be_banned_or_reinstated():
    subject = account()
    record(subject, fact("AccountSuspended", KEY, occurred_at="2021-01-01"))
    record(subject, fact("AccountBanned", KEY, occurred_at="2021-01-02"))
    assert status(subject, "2021-01-03T00:00:00Z") == "banned"
    other = Account.track(SubjectKey.account("net:other"), now())
    record(other, fact("AccountSuspended", "net:other", occurred_at="2021-01-01"))
    record(other, fact("AccountReinstated", "net:other", occurred_at="2021-01-02"))
    assert status(other, "2021-01-03T00:00:00Z") == "active"

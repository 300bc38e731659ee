"""States as checkpoints store them: each fact named by its version, and nothing made on
reading but what a state is made of."""

from __future__ import annotations

import contextlib
import os
import pickle

import pytest
from hypothesis import given, settings

from adapters.checkpoints import dumped, loaded
from domain import Account, Platform, Subject
from domain.clock import now
from domain.errors import RuleViolation
from domain.values import SubjectKey
from tests.helpers import record, registration
from tests.strategies import account_facts, platform_facts


def recorded(subject: Subject, facts: list) -> Subject:
    for new in facts:
        with contextlib.suppress(RuleViolation):
            record(subject, new)
    return subject


@settings(max_examples=60, deadline=None)
@given(platform_facts(), account_facts())
def test_a_state_read_back_is_the_state_written(platform, account):
    site = Platform.track(SubjectKey.platform("site"), now())
    subjects = [
        recorded(site, [registration(app_stores=["google_play"]), *platform]),
        recorded(Account.track(SubjectKey.account("net:x"), now()), account),
    ]
    for subject in subjects:
        by_version = {f.originator_version: f for f in subject.facts.values()}
        state = subject.timeline.end_state()
        assert loaded(dumped(state), by_version.__getitem__) == state


class Shell:
    def __reduce__(self):
        return os.system, ("true",)


def test_a_row_that_names_anything_but_a_state_s_classes_is_refused():
    with pytest.raises(pickle.UnpicklingError, match=r"(posix|os)\.system"):
        loaded(pickle.dumps(Shell()), lambda version: None)

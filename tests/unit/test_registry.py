"""The domain's registry of event types is the one list: the interchange format and the
test strategies cover exactly it, field for field."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import interchange
from domain import ACTION_TYPES, EVENT_TYPES, RETRACTION, SUBJECT_CLASSES
from projections.documents import LIBRARY_FIELDS
from tests.strategies import ACCOUNT_ACTIONS, EXTRA_FIELDS, PLATFORM_ACTIONS

STORE_KEYS = {"event_id", "recorded_at", "position", "type"}


def input_model(event_type: str) -> type:
    [model] = [
        m
        for m in typing.get_args(typing.get_args(interchange.EventInput)[0])
        if m.model_fields["type"].annotation == typing.Literal[event_type]
    ]
    return model


def test_the_interchange_format_knows_exactly_the_domains_event_types():
    assert sorted(interchange.EVENT_TYPES) == sorted(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_each_input_model_has_the_fields_of_its_domain_event(event_type):
    model = input_model(event_type)
    subject_keys = {"platform", "account"}
    given = set(model.model_fields) - STORE_KEYS - subject_keys
    kind = "platform" if event_type == RETRACTION else ACTION_TYPES[event_type].kind
    event_class = SUBJECT_CLASSES[kind].fact_types()[event_type]
    own = {f.name for f in dataclasses.fields(event_class)} - LIBRARY_FIELDS - {"event_id"}
    assert given == own
    if event_type != RETRACTION:  # a retraction may name either kind, or none
        assert kind in model.model_fields and (subject_keys - {kind}).isdisjoint(model.model_fields)


def test_the_strategies_draw_every_action_type():
    assert {*PLATFORM_ACTIONS, *ACCOUNT_ACTIONS, "PlatformRegistered"} == set(ACTION_TYPES)


@settings(max_examples=20)
@given(st.data())
def test_the_strategies_draw_every_required_field(data):
    for event_type in sorted({*PLATFORM_ACTIONS, *ACCOUNT_ACTIONS}):
        model = input_model(event_type)
        required = {n for n, f in model.model_fields.items() if f.is_required()}
        extra = data.draw(EXTRA_FIELDS[event_type]()) if event_type in EXTRA_FIELDS else {}
        drawn = {"type", "occurred_at", "provider", "platform", "account", *extra}
        assert required <= drawn, event_type

"""The domain's registry of event types is the one list (the interchange format's models are
made from it): the test strategies draw every type, with every field it requires."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import interchange
from domain import ACTION_TYPES, RETRACTION
from tests.strategies import ACCOUNT_ACTIONS, EXTRA_FIELDS, PLATFORM_ACTIONS


def input_model(event_type: str) -> type:
    return interchange.INPUT_MODELS[event_type]


def test_the_interchange_format_reads_a_field_as_the_domain_declares_it():
    """Optional in the domain (`X | None`): may be left out; a list: may be left out (empty);
    else required (but where the format gives a default)."""
    model = input_model("AccountSuspended")
    assert not model.model_fields["until"].is_required()
    assert model.model_fields["provider"].is_required()
    assert model.model_fields["sources"].get_default(call_default_factory=True) == []
    assert input_model("HostingRestored").model_fields["scope"].default == "full"
    retraction = input_model(RETRACTION).model_fields
    assert retraction["reason"].is_required() and not retraction["platform"].is_required()


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

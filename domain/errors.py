"""The domain's refusals: each names the rule broken and the event it conflicts with."""

from __future__ import annotations


class RuleViolation(Exception):
    """A fact that the subject's timeline cannot take."""

    def __init__(self, message: str, conflicts_with: str | None = None) -> None:
        super().__init__(message)
        self.conflicts_with = conflicts_with


class UnknownEvent(RuleViolation):
    """A retraction whose target the store has no record of."""


class UnknownSubject(LookupError):
    """A subject the store has no record of (at the requested time)."""

"""The deplatforming domain: subjects, their events, and the rules that fold them into status."""

from domain.account import Account
from domain.platform import Platform
from domain.subjects import Subject
from domain.values import SubjectKey

SUBJECT_CLASSES: dict[str, type[Subject]] = {"platform": Platform, "account": Account}

RETRACTION = "EventRetracted"  # names no subject: it belongs to its target's

# Every action type by its interchange name, with the kind of subject it acts on: derived
# from the subject classes, the one registry the interchange format and the tests follow.
ACTION_TYPES: dict[str, type[Subject]] = {
    name: subject_class
    for subject_class in SUBJECT_CLASSES.values()
    for name in subject_class.fact_types()
    if name != RETRACTION
}
EVENT_TYPES: tuple[str, ...] = (*ACTION_TYPES, RETRACTION)


def tracked_key(event: Subject.Tracked) -> SubjectKey:
    """The subject a timeline's first event starts, as first spelled."""
    for kind, subject_class in SUBJECT_CLASSES.items():
        if isinstance(event, subject_class.Tracked):
            return SubjectKey.parse_kind(kind, event.key)
    raise TypeError(f"{type(event).__qualname__} starts no known kind of subject")


__all__ = [
    "ACTION_TYPES",
    "EVENT_TYPES",
    "RETRACTION",
    "SUBJECT_CLASSES",
    "Account",
    "Platform",
    "Subject",
    "tracked_key",
]

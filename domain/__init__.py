"""The deplatforming domain: subjects, their events, and the rules that fold them into status."""

from domain.account import Account
from domain.platform import Platform
from domain.subjects import Subject

SUBJECT_CLASSES: dict[str, type[Subject]] = {"platform": Platform, "account": Account}

_SPEC_TYPES = {
    Platform: [
        "PlatformRegistered",
        "HostingTerminated",
        "HostingRestored",
        "AppStoreRemoved",
        "AppStoreReinstated",
        "DomainSuspended",
        "DomainRestored",
        "PlatformShutDown",
        "PlatformRelaunched",
        "ServiceTerminated",
        "ServiceRestored",
    ],
    Account: ["AccountSuspended", "AccountBanned", "AccountReinstated"],
}

# Every event type of the spec by its interchange name, with the subject class it belongs to
# (`EventRetracted` belongs to its target's subject).
FACT_TYPES: dict[str, tuple[type[Subject] | None, str]] = {
    "EventRetracted": (None, "EventRetracted"),
    **{name: (cls, name) for cls, names in _SPEC_TYPES.items() for name in names},
}

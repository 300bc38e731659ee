"""Platforms: the infrastructure actions against them and the availability they leave.

`PlatformState` is the spec's state (hosting map, domain, store listings, shut
down, services) folded over a timeline; each part remembers the event that set
it, so that a refusal can name the event it conflicts with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, partial
from typing import NoReturn, Self

from domain.clock import iso
from domain.errors import RuleViolation
from domain.regions import Regional, lift, own_regions, where
from domain.subjects import CHECKING, FactIndex, Subject
from domain.timeline import Order
from domain.values import (
    UNSPECIFIED_PROVIDER,
    AppStore,
    Availability,
    Channel,
    HostingScope,
    SubjectKey,
    provider_identity,
)


class Platform(Subject):
    """A service that infrastructure providers can cut off."""

    kind = "platform"

    class PlatformRegistered(Subject.Action):
        name: str
        hosting_provider: str | None
        registrar: str | None
        app_stores: list[str]

    class HostingTerminated(Subject.ProviderAction):
        announced_at: datetime | None

    class HostingRestored(Subject.ProviderAction):
        scope: HostingScope

    class AppStoreRemoved(Subject.ProviderAction):
        store: str
        regions: list[str] | None = field(default=None, kw_only=True)  # None: everywhere

    class AppStoreReinstated(Subject.ProviderAction):
        store: str
        regions: list[str] | None = field(default=None, kw_only=True)

    class DomainSuspended(Subject.ProviderAction):
        pass

    class DomainRestored(Subject.ProviderAction):
        pass

    class PlatformShutDown(Subject.ProviderAction):
        regions: list[str] | None = field(default=None, kw_only=True)  # None: everywhere

    class PlatformRelaunched(Subject.ProviderAction):
        regions: list[str] | None = field(default=None, kw_only=True)

    class AccessBlocked(Subject.ProviderAction):
        regions: list[str]
        scope: HostingScope

    class AccessRestored(Subject.ProviderAction):
        regions: list[str]

    class ServiceTerminated(Subject.ProviderAction):
        service: str

    class ServiceRestored(Subject.ProviderAction):
        service: str

    @classmethod
    def start(cls, subject: SubjectKey, fact_type: str, now: datetime) -> Platform:
        """A platform exists from its registration on: its first fact must be that."""
        if fact_type != cls.PlatformRegistered.__name__:
            raise RuleViolation(
                f"unknown platform {subject.key!r}: record its PlatformRegistered first"
            )
        return cls.track(subject, now)

    def beginning(self) -> Callable[[], PlatformState]:
        return partial(_beginning, self.key, self.facts_index)

    def check_fields(self, action: Subject.Action) -> None:
        if isinstance(action, Platform.PlatformRegistered):
            registration = self.registration
            if registration is not None:
                raise RuleViolation(
                    f"{self.key} is already registered by event {registration.describe()}",
                    conflicts_with=registration.event_id,
                )

    def check_retractable(self, target: Subject.Fact) -> None:
        if isinstance(target, Platform.PlatformRegistered):
            raise RuleViolation(
                f"event {target.event_id!r} registers {self.key}; a registration cannot be "
                "retracted",
                conflicts_with=target.event_id,
            )

    @property
    def registration(self) -> Platform.PlatformRegistered | None:
        return _beginning(self.key, self.facts_index).registered_by


def _beginning(platform: str, facts: FactIndex) -> PlatformState:
    """A platform's state before its first action (as registered, for refusals' messages)."""
    first = facts.first
    return PlatformState(
        platform, first if isinstance(first, Platform.PlatformRegistered) else None
    )


def _last_end(provider: str, order: Order) -> Subject.Action | None:
    """The termination that last ended a provider's hosting before `order`, in the timeline
    under check (for a refusal's message: looked up when one is made, not kept in states)."""
    subject = CHECKING.get()
    if subject is None:
        return None
    return subject.last_before(
        order,
        lambda a: (
            isinstance(a, Platform.HostingTerminated) and provider_identity(a.provider) == provider
        ),
    )


@dataclass
class Host:
    provider: str
    scope: HostingScope
    since: Subject.Action


@dataclass
class PlatformState:
    """The fold of a platform's timeline; `channels` and `overall` derive availability."""

    platform: str
    # For refusals' messages only, so not compared: folds that differ only there are equal.
    registered_by: Platform.PlatformRegistered | None = field(default=None, compare=False)
    registration: Platform.PlatformRegistered | None = None  # folded so far
    hosting: dict[str, Host] = field(default_factory=dict)
    domain_suspended: Subject.Action | None = None
    domain_restored: Subject.Action | None = None
    listings: dict[AppStore, Regional] = field(default_factory=dict)  # on: delisted
    withdrawn: Regional = field(default_factory=Regional)  # on: shut down by its operator
    access: dict[str, tuple[HostingScope, Subject.Action]] = field(default_factory=dict)
    # The hosting terminations not settled (see `measures`), by provider.
    outstanding: dict[str, Subject.Action] = field(default_factory=dict)
    # The last lifting of a block in each country (for refusals' messages only).
    unblocked: dict[str, Subject.Action] = field(default_factory=dict, compare=False)
    # Services are informational: no rule reads them, so a late one never forces a refold.
    services: dict[tuple[str, str], Subject.ProviderAction] = field(
        default_factory=dict, compare=False
    )

    def copy(self) -> Self:
        return type(self)(
            platform=self.platform,
            registered_by=self.registered_by,
            registration=self.registration,
            hosting=dict(self.hosting),
            domain_suspended=self.domain_suspended,
            domain_restored=self.domain_restored,
            listings={store: layer.copy() for store, layer in self.listings.items()},
            withdrawn=self.withdrawn.copy(),
            access=dict(self.access),
            outstanding=dict(self.outstanding),
            unblocked=dict(self.unblocked),
            services=dict(self.services),
        )

    def advance(self, moment: datetime) -> None:
        """Platforms have no timed states: nothing changes without an event."""

    def next_change(self) -> datetime | None:
        return None

    # Derived availability -------------------------------------------------------

    @property
    def stores(self) -> tuple[AppStore, ...]:
        """The registration's app stores, in its order."""
        assert self.registration is not None
        return app_stores(tuple(self.registration.app_stores))

    @property
    def hosting_level(self) -> Availability:
        scopes = [host.scope.availability for host in self.hosting.values()]
        return max(scopes, key=lambda s: s.rank, default=Availability.OFFLINE)

    def listing(self, store: AppStore) -> Regional:
        return self.listings.get(store) or Regional()

    def backend(self, region: str | None = None) -> Availability:
        if self.withdrawn.on(region) or self.domain_suspended is not None:
            return Availability.OFFLINE
        return self.hosting_level

    def reach(self, region: str | None = None) -> Availability:
        """Whether the country's networks let the platform through (no block elsewhere)."""
        blocked = self.access.get(region) if region is not None else None
        return blocked[0].blocked if blocked is not None else Availability.ONLINE

    def channels_in(self, region: str | None = None) -> dict[Channel, Availability]:
        """Each channel's availability in a country (None: where no country has a value of
        its own)."""
        backend = Availability.least(self.backend(region), self.reach(region))
        channels = {Channel.WEB: backend}
        for store in by_channel(self.stores):
            delisted = self.listing(store).on(region)
            listing = Availability.PARTIAL if delisted else Availability.ONLINE
            channels[store.channel] = Availability.least(listing, backend)
        return channels

    @property
    def channels(self) -> dict[Channel, Availability]:
        return self.channels_in(None)

    @property
    def overall(self) -> Availability:
        return overall_of(self.channels)

    def own_regions(self) -> set[str]:
        """The countries with a value of their own in some layer."""
        return own_regions(self.withdrawn, self.access, *self.listings.values())

    def measures(self, region: str | None = None) -> list[tuple[Subject.Action, list[Channel]]]:
        """The measures in force in a country (None: elsewhere), each with the channels it
        binds: those of every layer below `online` at the level of the channel's status."""
        hosting = self.hosting_level
        layers: list[tuple[Availability, list[Subject.Action]]] = [
            (hosting, list(self.outstanding.values()) if not hosting.available else []),
        ]
        if self.domain_suspended is not None:
            layers.append((Availability.OFFLINE, [self.domain_suspended]))
        withdrawn, by = self.withdrawn.at(region)
        if withdrawn and by is not None:
            layers.append((Availability.OFFLINE, [by]))
        blocked = self.access.get(region) if region is not None else None
        if blocked is not None:
            layers.append((blocked[0].blocked, [blocked[1]]))
        found: dict[str, tuple[Subject.Action, list[Channel]]] = {}
        for channel, status in self.channels_in(region).items():
            if status.available:
                continue
            binding = [m for level, ms in layers if level is status for m in ms]
            if channel is not Channel.WEB and status is Availability.PARTIAL:
                store = AppStore.of(channel)
                delisted, removal = self.listing(store).at(region)
                if delisted and removal is not None:
                    binding.append(removal)
            for measure in binding:
                found.setdefault(measure.event_id, (measure, []))[1].append(channel)
        return sorted(found.values(), key=lambda item: item[0].order)

    # The rules ------------------------------------------------------------------

    def apply(self, action: Subject.Action) -> None:
        if isinstance(action, Platform.PlatformRegistered):
            self._register(action)
            return
        if self.registration is None:
            registration = self.registered_by
            raise RuleViolation(
                f"{iso(action.occurred_at)} is before {self.platform} was registered"
                + (f" by event {registration.describe()}" if registration else ""),
                conflicts_with=registration.event_id if registration else None,
            )
        match action:
            case Platform.HostingTerminated():
                self._terminate_hosting(action)
            case Platform.HostingRestored():
                self._restore_hosting(action)
            case Platform.AppStoreRemoved():
                self._remove_from_store(action)
            case Platform.AppStoreReinstated():
                self._reinstate_in_store(action)
            case Platform.DomainSuspended():
                self._suspend_domain(action)
            case Platform.DomainRestored():
                self._restore_domain(action)
            case Platform.PlatformShutDown():
                self._withdraw(action, True)
            case Platform.PlatformRelaunched():
                self._withdraw(action, False)
            case Platform.AccessBlocked():
                self._block(action)
            case Platform.AccessRestored():
                self._unblock(action)
            case Platform.ServiceTerminated():
                self.services.pop((provider_identity(action.provider), action.service), None)
            case Platform.ServiceRestored():
                self.services[(provider_identity(action.provider), action.service)] = action
            case _:
                raise RuleViolation(f"{action.type} does not apply to a platform")

    def _register(self, action: Platform.PlatformRegistered) -> None:
        if self.registration is not None:
            raise RuleViolation(
                f"{self.platform} is already registered by event {self.registration.describe()}",
                conflicts_with=self.registration.event_id,
            )
        self.registration = action
        host = action.hosting_provider or UNSPECIFIED_PROVIDER
        self.hosting[provider_identity(host)] = Host(host, HostingScope.FULL, action)

    def _terminate_hosting(self, action: Platform.HostingTerminated) -> None:
        provider = provider_identity(action.provider)
        if provider in self.hosting:
            del self.hosting[provider]
        elif provider_identity(UNSPECIFIED_PROVIDER) in self.hosting:
            del self.hosting[provider_identity(UNSPECIFIED_PROVIDER)]
        else:
            self._not_a_host(action)
        self.outstanding[provider] = action

    def _not_a_host(self, action: Subject.ProviderAction) -> None:
        hosts = ", ".join(  # in a fixed order: folds that meet may hold them in another
            f"{host.provider} (since event {host.since.event_id})"
            for _, host in sorted(self.hosting.items())
        )
        removed = _last_end(provider_identity(action.provider), action.order)
        if removed is not None:
            raise RuleViolation(
                f"{action.provider!r} no longer hosts {self.platform} at "
                f"{iso(action.occurred_at)}: event {removed.describe()} ended its hosting",
                conflicts_with=removed.event_id,
            )
        raise RuleViolation(
            f"{action.provider!r} does not host {self.platform} at {iso(action.occurred_at)}; "
            f"hosts then: {hosts or 'none'}",
            conflicts_with=min(self.hosting.items())[1].since.event_id if self.hosting else None,
        )

    def _restore_hosting(self, action: Platform.HostingRestored) -> None:
        scope = HostingScope(action.scope)
        below = not self.hosting_level.available
        provider = provider_identity(action.provider)
        self.hosting[provider] = Host(action.provider, scope, action)
        self.outstanding.pop(provider, None)  # its own termination is restored
        if below and self.hosting_level.available:  # a full return settles every termination
            self.outstanding.clear()

    def _store(self, action: Platform.AppStoreRemoved | Platform.AppStoreReinstated) -> AppStore:
        assert self.registration is not None
        if action.store not in self.registration.app_stores:
            listed = ", ".join(self.registration.app_stores) or "none"
            raise RuleViolation(
                f"{self.platform} was not registered in {action.store} (event "
                f"{self.registration.event_id} lists: {listed})",
                conflicts_with=self.registration.event_id,
            )
        return AppStore(action.store)

    def _remove_from_store(self, action: Platform.AppStoreRemoved) -> None:
        store = self._store(action)

        def refuse(region: str | None, earlier: Subject.Action | None) -> NoReturn:
            assert earlier is not None  # a listing is delisted only by an event
            raise RuleViolation(
                f"{self.platform} is already delisted from {store}{where(region)} by event "
                f"{earlier.describe()}",
                conflicts_with=earlier.event_id,
            )

        self._listing_of(store).turn(True, action, action.regions, refuse)

    def _reinstate_in_store(self, action: Platform.AppStoreReinstated) -> None:
        store = self._store(action)

        def refuse(region: str | None, earlier: Subject.Action | None) -> NoReturn:
            since = earlier or self.registration
            assert since is not None
            raise RuleViolation(
                f"{self.platform} is listed in {store}{where(region)} at "
                f"{iso(action.occurred_at)} (since event {since.describe()})",
                conflicts_with=since.event_id,
            )

        self._listing_of(store).turn(False, action, action.regions, refuse)

    def _listing_of(self, store: AppStore) -> Regional:
        return self.listings.setdefault(store, Regional())

    def _suspend_domain(self, action: Platform.DomainSuspended) -> None:
        if self.domain_suspended is not None:
            raise RuleViolation(
                f"the domain of {self.platform} is already suspended by event "
                f"{self.domain_suspended.describe()}",
                conflicts_with=self.domain_suspended.event_id,
            )
        self.domain_suspended, self.domain_restored = action, None

    def _restore_domain(self, action: Platform.DomainRestored) -> None:
        if self.domain_suspended is None:
            earlier = self.domain_restored or self.registration
            assert earlier is not None
            raise RuleViolation(
                f"the domain of {self.platform} is not suspended at {iso(action.occurred_at)} "
                f"(resolving since event {earlier.describe()})",
                conflicts_with=earlier.event_id,
            )
        self.domain_suspended, self.domain_restored = None, action

    def _withdraw(
        self, action: Platform.PlatformShutDown | Platform.PlatformRelaunched, down: bool
    ) -> None:
        def refuse(region: str | None, earlier: Subject.Action | None) -> NoReturn:
            if down:
                assert earlier is not None  # shut down only by an event
                raise RuleViolation(
                    f"{self.platform} is already shut down{where(region)} by event "
                    f"{earlier.describe()}",
                    conflicts_with=earlier.event_id,
                )
            since = earlier or self.registration
            assert since is not None
            raise RuleViolation(
                f"{self.platform} is not shut down{where(region)} at "
                f"{iso(action.occurred_at)} (running since event {since.describe()})",
                conflicts_with=since.event_id,
            )

        self.withdrawn.turn(down, action, action.regions, refuse)

    def _block(self, action: Platform.AccessBlocked) -> None:
        scope = HostingScope(action.scope)
        for region in action.regions:
            blocked = self.access.get(region)
            if blocked is not None and blocked[0] is scope:
                raise RuleViolation(
                    f"{self.platform} is already blocked ({scope}) in {region} by event "
                    f"{blocked[1].describe()}",
                    conflicts_with=blocked[1].event_id,
                )
        for region in action.regions:
            self.access[region] = (scope, action)

    def _unblock(self, action: Platform.AccessRestored) -> None:
        def refuse(region: str) -> NoReturn:
            since = self.unblocked.get(region) or self.registration
            assert since is not None
            raise RuleViolation(
                f"{self.platform} is not blocked in {region} at {iso(action.occurred_at)} "
                f"(reachable since event {since.describe()})",
                conflicts_with=since.event_id,
            )

        lift(self.access, self.unblocked, action, action.regions, refuse)


def overall_of(channels: dict[Channel, Availability]) -> Availability:
    """Online if every channel is, offline if every channel is, partial otherwise."""
    values = set(channels.values())
    if values == {Availability.ONLINE}:
        return Availability.ONLINE
    if values == {Availability.OFFLINE}:
        return Availability.OFFLINE
    return Availability.PARTIAL


@cache
def app_stores(names: tuple[str, ...]) -> tuple[AppStore, ...]:
    return tuple(map(AppStore, names))


@cache
def by_channel(stores: tuple[AppStore, ...]) -> tuple[AppStore, ...]:
    """The stores in their channels' order (iOS first)."""
    return tuple(sorted(stores, key=lambda s: s.channel != Channel.IOS))

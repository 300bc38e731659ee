"""Accounts: suspensions (possibly timed), bans and reinstatements by their platform."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import NoReturn, Self

from domain.clock import iso
from domain.errors import RuleViolation
from domain.regions import lift
from domain.subjects import Subject
from domain.values import AccountStatus


class Account(Subject):
    """A person's or organisation's account on a platform; active until an event says otherwise."""

    kind = "account"

    class AccountSuspended(Subject.ProviderAction):
        until: datetime | None

    class AccountBanned(Subject.ProviderAction):
        pass

    class AccountReinstated(Subject.ProviderAction):
        pass

    class AccountWithheld(Subject.ProviderAction):
        regions: list[str]

    class AccountWithholdingLifted(Subject.ProviderAction):
        regions: list[str]

    def beginning(self) -> Callable[[], AccountState]:
        return partial(AccountState, account=self.key)

    @classmethod
    def state_before_first_fact(cls, key: str) -> AccountState:
        """An account needs no registration: before its first fact it counts as active."""
        return AccountState(account=key)

    def check_fields(self, action: Subject.Action) -> None:
        if (
            isinstance(action, Account.AccountSuspended)
            and action.until is not None
            and action.until <= action.occurred_at
        ):
            raise RuleViolation(
                f"until {iso(action.until)} must be later than occurred_at "
                f"{iso(action.occurred_at)}"
            )


@dataclass
class AccountState:
    """An account's status at a moment, with the event that set it."""

    account: str
    status: AccountStatus = AccountStatus.ACTIVE
    until: datetime | None = None
    cause: Subject.Action | None = None
    lapsed: bool = False  # active again because a timed suspension ran out
    until_lapsed: datetime | None = None
    withheld: dict[str, Subject.Action] = field(default_factory=dict)  # by country
    # The last lifting of a withholding in each country (for refusals' messages only).
    lifted: dict[str, Subject.Action] = field(default_factory=dict, compare=False)

    def copy(self) -> Self:
        return type(self)(
            account=self.account,
            status=self.status,
            until=self.until,
            cause=self.cause,
            lapsed=self.lapsed,
            until_lapsed=self.until_lapsed,
            withheld=dict(self.withheld),
            lifted=dict(self.lifted),
        )

    def status_in(self, region: str | None = None) -> AccountStatus:
        """Its status in a country (None: where it is withheld nowhere): banned or suspended
        everywhere, else withheld where it is, else active."""
        if self.status is AccountStatus.ACTIVE and region in self.withheld:
            return AccountStatus.WITHHELD
        return self.status

    def measures(self, region: str | None = None) -> list[Subject.Action]:
        """The measures in force in a country: a ban or the suspension in force, else the
        withholding in force there."""
        if self.status is not AccountStatus.ACTIVE:
            return [self.cause] if self.cause is not None else []
        withheld = self.withheld.get(region) if region is not None else None
        return [withheld] if withheld is not None else []

    def own_regions(self) -> set[str]:
        return set(self.withheld)

    @property
    def since(self) -> datetime | None:
        if self.lapsed:
            return self.until_lapsed
        return self.cause.occurred_at if self.cause is not None else None

    def next_change(self) -> datetime | None:
        return self.until if self.status is AccountStatus.SUSPENDED else None

    def advance(self, moment: datetime) -> None:
        """A timed suspension ends by itself at `until`."""
        if (
            self.status is AccountStatus.SUSPENDED
            and self.until is not None
            and self.until <= moment
        ):
            self.status, self.lapsed, self.until_lapsed = AccountStatus.ACTIVE, True, self.until
            self.until = None

    def apply(self, action: Subject.Action) -> None:
        self.advance(action.occurred_at)
        until: datetime | None = None
        match action:
            case Account.AccountWithheld():
                self._withhold(action)
                return
            case Account.AccountWithholdingLifted():
                self._lift(action)
                return
            case Account.AccountSuspended():
                if self.status is AccountStatus.BANNED:
                    self._refuse(action, "is banned")
                status, until = AccountStatus.SUSPENDED, action.until
            case Account.AccountBanned():
                if self.status is AccountStatus.BANNED:
                    self._refuse(action, "is banned")
                status = AccountStatus.BANNED
            case Account.AccountReinstated():
                if self.status is AccountStatus.ACTIVE:
                    self._refuse(action, "is active")
                status = AccountStatus.ACTIVE
            case _:
                raise RuleViolation(f"{action.type} does not apply to an account")
        self.status, self.until, self.cause, self.lapsed = status, until, action, False

    def _withhold(self, action: Account.AccountWithheld) -> None:
        for region in action.regions:
            earlier = self.withheld.get(region)
            if earlier is not None:
                raise RuleViolation(
                    f"{self.account} is already withheld in {region} by event {earlier.describe()}",
                    conflicts_with=earlier.event_id,
                )
        for region in action.regions:
            self.withheld[region] = action

    def _lift(self, action: Account.AccountWithholdingLifted) -> None:
        def refuse(region: str) -> NoReturn:
            earlier = self.lifted.get(region)
            at = iso(action.occurred_at)
            if earlier is None:
                raise RuleViolation(f"{self.account} is not withheld in {region} at {at}")
            raise RuleViolation(
                f"{self.account} is not withheld in {region} at {at} (lifted by event "
                f"{earlier.describe()})",
                conflicts_with=earlier.event_id,
            )

        lift(self.withheld, self.lifted, action, action.regions, refuse)

    def _refuse(self, action: Subject.Action, being: str) -> None:
        at = iso(action.occurred_at)
        if self.cause is None:
            raise RuleViolation(f"{self.account} {being} at {at} (no earlier event)")
        how = (
            f"its suspension by event {self.cause.describe()} ran out at {iso(self.until_lapsed)}"
            if self.lapsed and self.until_lapsed is not None
            else f"since event {self.cause.describe()}"
        )
        raise RuleViolation(
            f"{self.account} {being} at {at}: {how}", conflicts_with=self.cause.event_id
        )

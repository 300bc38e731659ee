"""Parts of a subject's state that can differ by country (a store listing, a withdrawal from
a market, a withheld account): a worldwide value, and the countries that have one of their
own. Countries are ISO 3166-1 alpha-2 codes, checked where input is read.

An action that names countries must change the value in each of them; one that names none
must change it somewhere, and then sets it everywhere (the countries' own values cleared).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Self

# Refuses an action: the country it could not change (None: anywhere), and the event that
# set the value it found there (None: the value from the start).
Refusal = Callable[[str | None, Any], NoReturn]


@dataclass
class Regional:
    """A yes/no layer: its worldwide value with the event that set it (None: from the start),
    and each country's own."""

    world: tuple[bool, Any] = (False, None)
    countries: dict[str, tuple[bool, Any]] = field(default_factory=dict)

    def copy(self) -> Self:
        return type(self)(self.world, dict(self.countries))

    def at(self, region: str | None) -> tuple[bool, Any]:
        """The value in a country (None: where no country has one of its own), with the event
        that set it."""
        if region is None:
            return self.world
        return self.countries.get(region, self.world)

    def on(self, region: str | None) -> bool:
        return self.at(region)[0]

    def anywhere(self) -> bool:
        """Whether the value is on in some country."""
        return self.world[0] or any(value for value, _ in self.countries.values())

    def turn(self, to: bool, action: Any, regions: Sequence[str] | None, refuse: Refusal) -> None:
        """Sets the value to `to` by `action`, in the named countries or everywhere, or refuses
        it (where it would change nothing)."""
        if regions:
            for region in regions:
                value, by = self.at(region)
                if value == to:
                    refuse(region, by)
            for region in regions:
                self.countries[region] = (to, action)
            return
        if self.world[0] == to and all(value == to for value, _ in self.countries.values()):
            refuse(None, self.world[1])
        self.world, self.countries = (to, action), {}


def lift(
    held: dict[str, Any],
    lifted: dict[str, Any],
    action: Any,
    regions: Sequence[str],
    refuse: Callable[[str], NoReturn],
) -> None:
    """Ends a measure held per country (a block, a withholding) in each named country, which
    must have one (else `refuse` says so for the first that has none); remembers `action` as
    its end there."""
    for region in regions:
        if region not in held:
            refuse(region)
    for region in regions:
        del held[region]
        lifted[region] = action


def own_regions(*layers: Regional | dict[str, Any]) -> set[str]:
    """The countries that have a value of their own in any of these layers."""
    found: set[str] = set()
    for layer in layers:
        found |= set(layer.countries if isinstance(layer, Regional) else layer)
    return found


def where(region: str | None) -> str:
    """How a refusal names the place: " in BR", or nothing for everywhere."""
    return f" in {region}" if region else ""

"""Countries, as ISO 3166-1 alpha-2 codes assigned today (pycountry's list: 249 of them), and
their names for readers."""

from __future__ import annotations

from functools import cache

import pycountry


@cache
def country_code(text: str) -> str:
    """A country code as stored (upper case), or ValueError naming what is not one."""
    code = text.upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(
            f"{text!r} is not an ISO 3166-1 alpha-2 country code (such as US, BR, NG; a group "
            "of countries is given as the list of its members' codes)"
        )
    return code


def country_name(code: str) -> str:
    """The country's common name where it has one (Russia, not the Russian Federation)."""
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return code
    return str(getattr(country, "common_name", None) or country.name)


def distinct(codes: list[str]) -> list[str]:
    """A list of countries, each once."""
    repeated = sorted({code for code in codes if codes.count(code) > 1})
    if repeated:
        raise ValueError(f"countries named twice: {', '.join(repeated)}")
    return codes

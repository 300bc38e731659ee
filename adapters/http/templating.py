"""The Jinja templates of the pages, shared by the page routes and the error pages."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.templating import Jinja2Templates

from adapters.countries import country_name
from adapters.wording import measure_words, words
from domain.values import AccountStatus, Availability

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


URI_SAFE = ":/?#[]@!$&'()*+,;=%~-._"  # what a URI may hold as it is (RFC 3986)


def href(url: object) -> str:
    """A URL as a link or a header holds it: what a URI may not hold as it is (a space, a
    key in any script) percent-encoded."""
    return quote(str(url), safe=URI_SAFE)


def site(url: str) -> str:
    """A source link's text: the site it is on (`reuters.com`), not "source 1"."""
    host = urlsplit(url).hostname or url
    return host.removeprefix("www.")


templates.env.filters["site"] = site
templates.env.filters["words"] = words
templates.env.filters["measure"] = measure_words
templates.env.filters["country"] = country_name
# The status vocabulary, in its order (best first), as the board's filter lists it.
templates.env.globals["statuses"] = [str(s) for s in reversed(Availability)] + [
    str(s) for s in reversed(AccountStatus)
]


def to_second(text: str | None) -> str:
    """An ISO 8601 instant as pages show it: to the second, in UTC (`2021-01-11 07:59:00`)."""
    return text[:19].replace("T", " ") if text else ""


templates.env.filters["second"] = to_second


def mark_page(request: Request) -> None:
    """A router dependency of the page routes: their errors are answered as pages."""
    request.state.page = True


def wants_page(request: Request) -> bool:
    """An error on a page route, or on no route at all for a browser, is answered as a page
    (the API keeps its problem details)."""
    if getattr(request.state, "page", False):
        return True
    unrouted = request.scope.get("endpoint") is None
    return unrouted and "text/html" in request.headers.get("accept", "")

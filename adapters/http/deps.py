"""What routes take: the services on the store, the query service (settled for reads), and
the parameters shared by the API and the pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import Depends, Header, Query, Request

from adapters import interchange
from adapters.composition import Services
from adapters.countries import country_code
from adapters.http.problems import Problem
from adapters.serialize import StatusName
from domain.values import Status, SubjectKey, status_value
from service.query_service import QueryService

MAX_POSITION = 2**63 - 1


def services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


Tracker = Annotated[Services, Depends(services)]


def settled(
    request: Request,
    tracker: Tracker,
    min_position: Annotated[
        int | None,
        Header(
            alias="X-Min-Position",
            ge=0,
            le=MAX_POSITION,
            description="Answer only once the read models have applied this position "
            "(a write's `position`), waiting briefly; otherwise as they are.",
        ),
    ] = None,
) -> QueryService:
    """The query service, once the read models have caught up with this server's last
    write (and the position the client names), or a short wait has passed. A position the
    store has not reached is refused at once: waiting could not bring it."""
    if min_position is not None and min_position > (head := tracker.runner.head()):
        raise Problem(
            422,
            "Invalid request",
            f"X-Min-Position: {min_position} is beyond the store's last position ({head})",
            field="X-Min-Position",
        )
    progress = tracker.queries.settle(min_position)
    request.state.progress = progress
    if "known_at" not in request.query_params:  # what the answer reflects, to cite it
        request.state.pinned = tracker.queries.known_at_of(progress)
    return tracker.queries


Reads = Annotated[QueryService, Depends(settled)]


def instant(name: str, description: str) -> Any:
    """A documented query parameter holding an instant (ISO 8601 with a zone, or a date)."""

    def parse(
        value: str | None = Query(None, alias=name, description=description),
    ) -> datetime | None:
        if value is None or value == "":
            return None
        try:
            return interchange.parse_instant(value)
        except ValueError as error:
            raise Problem(422, "Invalid time", f"{name}: {error}", field=name) from None

    return Depends(parse)


def region_param(
    region: Annotated[
        str | None,
        Query(
            max_length=8,
            description="The answer in a country (ISO 3166-1 alpha-2 code: US, BR, ...); "
            "without it, the worldwide answer with the countries whose answer differs.",
        ),
    ] = None,
) -> str | None:
    if region is None or region == "":
        return None
    try:
        return country_code(region)
    except ValueError as error:
        raise Problem(422, "Invalid country", f"region: {error}", field="region") from None


def status_filter(
    status: Annotated[StatusName | None, Query(description="Overall status.")] = None,
) -> Status | None:
    return status_value(status.value) if status is not None else None


AsOf = Annotated[datetime | None, instant("as_of", "Valid time, e.g. 2021-01-12T00:00:00Z (now)")]
KnownAt = Annotated[
    datetime | None, instant("known_at", "Transaction time: as the record stood then (now)")
]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=MAX_POSITION)]
StatusFilter = Annotated[Status | None, Depends(status_filter)]
Region = Annotated[str | None, Depends(region_param)]


def subject_key(subject: str) -> SubjectKey:
    return SubjectKey.parse(subject)

"""How the pages and the CLI's tables word things for readers (JSON keeps the names)."""

from __future__ import annotations

import re


def words(event_type: str) -> str:
    """`HostingTerminated` -> `hosting terminated`."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", event_type).lower()

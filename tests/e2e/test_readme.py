"""The README's notebook example runs as written, on a store with the example."""

from __future__ import annotations

import re
from pathlib import Path

from adapters.composition import open_services
from tests.helpers import example_facts

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_notebook_example_runs(database_url, monkeypatch):
    [code] = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    with open_services(database_url) as tracker:
        tracker.record(example_facts())
    code = code.replace('"sqlite:///deplatform.db"', repr(database_url))
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    outages = scope["outages"].to_pylist()
    web = [o for o in outages if o["channel"] == "web" and o["status"] == "offline"]
    assert [o["time_in_period_seconds"] for o in web] == [489_660]

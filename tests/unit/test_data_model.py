"""The read models' reference page and Datasette metadata describe every column there is."""

from __future__ import annotations

import re
from pathlib import Path

from adapters.read_models.data_model import TABLES, datasette_metadata, reference
from adapters.read_models.schema import table_statements

DOCS = Path(__file__).resolve().parents[2] / "docs" / "data-model.md"


def test_every_column_of_the_read_models_is_described():
    names = {name: f"rm1_{name}" for name in TABLES}
    for statement in table_statements(names):
        table = next(name for name, full in names.items() if f" {full} (" in statement)
        body = statement.split("(", 1)[1]
        columns = {
            m.group(1) for m in re.finditer(r"(?:^|, )([a-z_]+) (?:TEXT|BIGINT|INTEGER)", body)
        }
        assert columns == set(TABLES[table][1]), table


def test_the_reference_page_is_made_from_the_descriptions():
    assert DOCS.read_text() == reference()  # uv run python scripts/data_model.py > docs/...


def test_datasette_metadata_names_the_generations_tables():
    tables = datasette_metadata(3, "store")["databases"]["store"]["tables"]
    assert set(tables) == {f"rm3_{name}" for name in TABLES}
    assert tables["rm3_periods"]["columns"]["overall"].startswith("the worldwide overall")

"""The formats a report is written in, by name: one list for the CLI, the API and the
renderer (a module of its own, so that naming them imports none of the renderers)."""

FORMATS = ("json", "csv", "md", "html", "parquet")
TABLED = ("csv", "parquet")  # formats of one table each: a zip of them, or one with `table`

"""Prints the reference page of the read models (`docs/data-model.md`), from their declared
descriptions:

    uv run python scripts/data_model.py > docs/data-model.md
"""

from __future__ import annotations

import sys

from adapters.read_models.data_model import reference

if __name__ == "__main__":
    sys.stdout.write(reference())

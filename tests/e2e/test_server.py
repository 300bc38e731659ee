"""The server beside a projection backlog: it answers at once and stops promptly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCENARIO = Path(__file__).resolve().parents[2] / "scripts" / "unprojected_server.py"


def test_a_server_on_unprojected_events_answers_at_once_and_stops_promptly(database_url):
    result = subprocess.run(
        [
            sys.executable,
            str(SCENARIO),
            "--events",
            "20000",
            "--subjects",
            "2000",
            "--json",
            "--database-url",
            database_url,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["healthz_seconds"] < 1 and figures["lag_reported"] > 0, figures
    assert figures["status_read_seconds"] < 5 and figures["status_read_lag_header"], figures
    assert figures["stop_seconds"] < 5 and figures["position_kept"] > 0, figures
    assert result.returncode == 0, result.stderr

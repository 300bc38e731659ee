"""The long scenarios of `scripts/`, run short: they must keep working as the code moves."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def run(script: str, *args: str) -> str:
    """What a script printed, run to the end (a failure fails the test)."""
    finished = subprocess.run(
        [sys.executable, SCRIPTS / script, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return finished.stdout


def test_the_import_memory_scenario_runs_short_and_reports_both_peaks():
    printed = run("import_memory.py", "--events", "12000", "--subjects", "300")
    peaks = re.findall(r"peak RSS +(\d+) MB", printed)
    assert len(peaks) == 2 and all(int(p) > 0 for p in peaks), printed
    assert "whole / baseline" in printed


def test_the_late_facts_benchmark_runs_short_and_compares_with_the_smallest_platform():
    printed = run(
        "late_facts.py",
        *("--sizes", "40", "400", "--late", "3", "--small", "30", "--pages", "1"),
        *("--store", "sqlite"),
    )
    assert len(re.findall(r"late fact, platform of .* p50 .* the 40-fact", printed)) == 2
    assert "a page of late facts on 30 platforms" in printed


def test_the_import_floor_times_each_part_of_both_sides_of_an_import():
    printed = run("import_floor.py", "--events", "3000", "--subjects", "60")
    _, worker, importing = re.split(
        r"^(?:parsing worker|importing process):$", printed, maxsplit=2, flags=re.M
    )
    sides = ((worker, 3, "validate, derive id and digest"), (importing, 7, "the domain's rules"))
    for side, parts, biggest in sides:
        timed = dict(re.findall(r"^  (\w[\w ,()']+?) +(-?\d+\.\d)$", side, re.MULTILINE))
        total = float(timed.pop("in all"))
        assert len(timed) == parts and float(timed[biggest]) > 0, timed
        assert all(float(micros) >= 0 for name, micros in timed.items() if "rest" not in name)
        assert abs(total - sum(map(float, timed.values()))) < 0.3, timed
    assert re.search(r"the slower side sets the pace: \d+\.\d us per event", printed)

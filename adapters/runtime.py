"""How the interpreter runs the tracker's processes: its cyclic garbage collector tuned for
processes that keep many objects alive.

An import, a rebuild or a server's writer holds hundreds of thousands of small objects (the
timelines it keeps, a chunk's events and rows). CPython's collector runs a young collection
every 700 allocations, and every few of those traverses older objects too: about a quarter
of an import's or a rebuild's time. Nothing the tracker builds relies on the collector to
free memory promptly (a subject's timeline holds no reference back to it: see
`domain.subjects.FactIndex`), so collections run every 50,000 allocations instead, and the
objects made while starting (modules, classes, the CLI and schemas) are moved out of the
collector's sight once loaded.
"""

from __future__ import annotations

import gc

YOUNG = 50_000  # allocations between young collections (CPython's default: 700)
OLDER = 5  # young collections between two of the middle generation, and so on (default 10):
# what cyclic garbage there is (the libraries' own) is freed before it lingers in the oldest


def tune_collector() -> None:
    gc.freeze()
    gc.set_threshold(YOUNG, OLDER, OLDER)


def spare_survivors() -> None:
    """Moves every object alive now out of the collector's sight: a bulk job calls it
    between chunks. What it keeps (the subjects it holds, the store's objects) lives on, and
    what it drops is freed by reference counting (it builds no cycles: an import of 200,000
    facts leaves about 130 cyclic objects, about as many with the collector on as off), so
    the collector need only look at what the next chunk makes. Its collections otherwise
    traverse more and more of what the job holds: a tenth of an import's time."""
    gc.freeze()

"""Portraits (人群画像): how a segment's members spread over a field's values.

Counted from the columns in one pass over the members' rows, so a portrait of a segment of a
million costs milliseconds rather than a scan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable

import numpy as np

from services.tagging.audience.columns import ColumnView
from services.tagging.audience.encoding import BOOL, LIST, MISSING, TEXT


def value_counts(view: ColumnView, members: np.ndarray) -> dict[Hashable, int]:
    """Members per value: text and enum values, True/False, each option of a multi-enum
    (a member counts once per option held), and None for members without a value. Numbers
    and datetimes are not counted per value."""
    kinds, payloads = view.kind[members], view.payload[members]
    counts: Counter[Hashable] = Counter()
    values = view.interner.values
    for code, n in _tally(payloads[kinds == TEXT]):
        counts[values[code]] += n
    for flag, n in _tally(payloads[kinds == BOOL]):
        counts[bool(flag)] += n
    for code, n in _tally(payloads[kinds == LIST]):
        for option in set(values[code]):  # type: ignore[arg-type]
            counts[option] += n
    missing = int(np.count_nonzero(kinds == MISSING))
    if missing:
        counts[None] = missing
    return dict(counts)


def _tally(payloads: np.ndarray) -> list[tuple[int, int]]:
    distinct, counts = np.unique(payloads, return_counts=True)
    return list(zip(distinct.tolist(), counts.tolist(), strict=True))

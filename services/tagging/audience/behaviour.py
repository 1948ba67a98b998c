"""Behaviour as sparse daily counts: one `BehaviourSeries` per (kind, target key, target value).

Each series is four parallel arrays of entries: row, day (proleptic ordinal), count, and the
row version the entry was written under. Replacing or removing a customer gives their row a new
version (see `rows`), which turns their old entries into tombstones without finding them; a
window sum ignores them and a series compacts itself once they are a quarter of its entries.
A series swept clean skips the check until the tenant replaces or removes someone again.
A window's counts per row are one `np.bincount` over the entries whose day falls inside it.
"""

from __future__ import annotations

import numpy as np

from services.tagging.audience.columns import grown

#: Compact when at least this share of a series' entries are tombstones.
COMPACT_SHARE = 0.25


class BehaviourSeries:
    def __init__(self, replacements: int = 0) -> None:
        self._rows = np.zeros(0, dtype=np.int64)
        self._days = np.zeros(0, dtype=np.int32)
        self._counts = np.zeros(0, dtype=np.int64)
        self._versions = np.zeros(0, dtype=np.int64)
        self._used = 0
        #: The tenant's replacement count when this series was last known free of tombstones.
        self._clean_at = replacements

    def __len__(self) -> int:
        return self._used

    def append(
        self, rows: np.ndarray, days: np.ndarray, counts: np.ndarray, versions: np.ndarray
    ) -> None:
        end = self._used + len(rows)
        self._rows = grown(self._rows, end)
        self._days = grown(self._days, end)
        self._counts = grown(self._counts, end)
        self._versions = grown(self._versions, end)
        self._rows[self._used : end] = rows
        self._days[self._used : end] = days
        self._counts[self._used : end] = counts
        self._versions[self._used : end] = versions
        self._used = end

    def window(
        self, first_day: int, last_day: int, row_versions: np.ndarray, replacements: int
    ) -> np.ndarray:
        """Each row's total count over days [first_day, last_day], for rows [0, len(versions)).
        `replacements`: the tenant's count of replaced or removed rows (see `rows`)."""
        live = None if self._clean_at == replacements else self._sweep(row_versions, replacements)
        days = self._days[: self._used]
        inside = (days >= first_day) & (days <= last_day)
        if live is not None:
            inside &= live
        # Float sums are exact up to 2**53 events per customer and window.
        weights = self._counts[: self._used][inside]
        size = len(row_versions)
        return np.bincount(self._rows[: self._used][inside], weights=weights, minlength=size)

    def _sweep(self, row_versions: np.ndarray, replacements: int) -> np.ndarray | None:
        """Drop tombstones if they are many; else the mask of live entries (None: all live)."""
        live = self._versions[: self._used] == row_versions[self._rows[: self._used]]
        dead = self._used - int(np.count_nonzero(live))
        if 0 < dead < COMPACT_SHARE * self._used:
            return live
        if dead:
            keep = np.flatnonzero(live)
            self._rows = self._rows[keep]
            self._days = self._days[keep]
            self._counts = self._counts[keep]
            self._versions = self._versions[keep]
            self._used = len(keep)
        self._clean_at = replacements
        return None

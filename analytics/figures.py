"""How a figure is presented (METRICS.md, ground rules): rounded once, at
the end, from unrounded values; a mean over nothing is null."""

from __future__ import annotations

MS_PER_HOUR = 3_600_000
MS_PER_MINUTE = 60_000


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def mean(total: float, count: int) -> float | None:
    return total / count if count else None


def percentage(part: int, whole: int) -> float | None:
    return 100 * part / whole if whole else None


def change_percentage(value: float | None, previous: float | None) -> float | None:
    if value is None or not previous:
        return None
    return rounded(100 * (value - previous) / previous)


def hours(milliseconds: int) -> float:
    return milliseconds / MS_PER_HOUR

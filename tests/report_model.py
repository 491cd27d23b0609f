"""Report figures recomputed in plain Python from the posted data set, as
the README defines them ("Reports: what each report holds", "Measures and
groupBy"), over tests/analytics_model.py's index. Imports nothing of the
product: a shared mistake would hide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from tests import analytics_model as model
from tests.analytics_data import Dataset


def _members(data: Dataset, scope: model.Scope) -> tuple[model.Organization, set[str] | None]:
    org = model.index(data)[scope.organization_id]
    return org, model.members(org, scope)


def _sees(members: set[str] | None, user: str | None) -> bool:
    return user is not None and (members is None or user in members)


def period(day: date, grain: str) -> str:
    if grain == "week":
        return model.iso_week(day)
    return day.isoformat() if grain == "day" else day.strftime("%Y-%m")


def content_usage(
    data: Dataset,
    scope: model.Scope,
    keys: Callable[[model.Organization, model.Event], tuple[Any, ...]],
    *,
    start: datetime | None = None,
    end: datetime,
    event_types: Iterable[str] | None = None,
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Events and distinct learners of the scope's users, grouped by `keys(org, event)`, in [start, end)."""
    org, members = _members(data, scope)
    wanted = set(event_types) if event_types else None
    groups: dict[tuple[Any, ...], list[model.Event]] = {}
    for e in org.events:
        if _sees(members, e.user_id) and (start is None or e.timestamp >= start) and e.timestamp < end:
            if wanted is None or e.event_type in wanted:
                groups.setdefault(keys(org, e), []).append(e)
    return {
        key: {"events": len(events), "activeLearners": len({e.user_id for e in events})} for key, events in groups.items()
    }


def activity(
    data: Dataset,
    scope: model.Scope,
    keys: Callable[[model.Organization, model.Event], tuple[Any, ...]],
    *,
    end: datetime,
    known_only: bool = True,
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """learner-activity's measures per group of the scope's (known) learners' events before `end`."""
    org, members = _members(data, scope)
    groups: dict[tuple[Any, ...], list[model.Event]] = {}
    for e in org.events:
        if _sees(members, e.user_id) and (not known_only or e.user_id in org.declared) and e.timestamp < end:
            groups.setdefault(keys(org, e), []).append(e)
    return {
        key: {
            "events": len(events),
            "activeDays": len({e.timestamp.date() for e in events}),
            "learningHours": model.rounded(sum(e.duration_ms or 0 for e in events if e.learning) / model.MS_PER_HOUR),
            "averageScore": model.rounded(model.mean(e.score for e in events if e.score is not None)),
            "lastActiveAt": model.iso(max(e.timestamp for e in events)),
            "activeLearners": len({e.user_id for e in events}),
        }
        for key, events in groups.items()
    }


def enrollment_counts(
    data: Dataset, scope: model.Scope, key: Callable[[model.Organization, str, str], tuple[Any, ...]], *, end: datetime
) -> tuple[dict[tuple[Any, ...], int], dict[tuple[Any, ...], int]]:
    """(enrollments, completions) of known learners of the scope before `end`, per key(org, user, course)."""
    org, members = _members(data, scope)
    enrolled: dict[tuple[Any, ...], int] = {}
    completed: dict[tuple[Any, ...], int] = {}
    for (user, course), e in org.enrollments.items():
        if _sees(members, user) and user in org.declared and e.enrolled_at < end:
            enrolled[key(org, user, course)] = enrolled.get(key(org, user, course), 0) + 1
    for (user, course), done in org.completions.items():
        if _sees(members, user) and user in org.declared and done.at < end:
            completed[key(org, user, course)] = completed.get(key(org, user, course), 0) + 1
    return enrolled, completed


def score_trend(data: Dataset, scope: model.Scope, user: str, course: str, *, end: datetime, recent_days: int) -> tuple[float | None, float | None]:
    """(earlier mean, recent mean) of a learner's scores in a course before `end`: the latest
    `recent_days` UTC days with scores against the days before them; None where there are none."""
    org, _ = _members(data, scope)
    days: dict[date, list[float]] = {}
    for e in org.events:
        if e.user_id == user and e.course_id == course and e.score is not None and e.timestamp < end:
            days.setdefault(e.timestamp.date(), []).append(e.score)
    ordered = sorted(days, reverse=True)
    recent = [s for d in ordered[:recent_days] for s in days[d]]
    earlier = [s for d in ordered[recent_days:] for s in days[d]]
    return (sum(earlier) / len(earlier) if earlier else None, sum(recent) / len(recent) if recent else None)


def weeks_between(first: date, last: date) -> list[str]:
    """The ISO weeks of the days first..last, in order."""
    return list(dict.fromkeys(model.iso_week(first + timedelta(days=n)) for n in range((last - first).days + 1)))

"""What every report query is built from: the requester's scope and the
job's parameters, as SQL fragments and bound values.

Every query is confined by the requester's scope (`Scope.users()`) and
narrowed by the job's parameters: `dateRange` (whole UTC days, [s, e)),
`filters` (learners, courses, classes, departments, event types). Lists
travel as JSON strings read with JSONExtract (both drivers bind a String
alike).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from analytics.params import midnight, sql_time
from analytics.scope import Scope
from reports.models import Filters, Parameters

START = "toDateTime64({range_start:String}, 3, 'UTC')"
END = "toDateTime64({range_end:String}, 3, 'UTC')"
DUE = "toDateTime64({due:String}, 3, 'UTC')"
# at-risk-learners: no activity in the course for this many days (parameters.inactiveDays)
DEFAULT_INACTIVE_DAYS = 14
# at-risk-learners, falling scores: the mean score of the latest parameters.recentScoreDays UTC days
# with scores is at least parameters.scoreDrop points below the mean of the days before them
DEFAULT_RECENT_SCORE_DAYS = 3
DEFAULT_SCORE_DROP = 10.0
_LISTS = ("learner_ids", "course_ids", "class_ids", "department_ids", "event_types")


def listed(name: str) -> str:
    """A filter list in SQL: the JSON array bound as f_<name>."""
    return f"JSONExtract({{f_{name}:String}}, 'Array(String)')"


@dataclass(frozen=True)
class Request:
    """What a query needs: who asked (their scope) and the job's parameters."""

    scope: Scope
    parameters: Parameters
    dropped_after_days: int
    now: datetime

    @property
    def filters(self) -> Filters:
        return self.parameters.filters or Filters()

    @property
    def end(self) -> datetime:
        """e: the midnight after dateRange.endDate; without a range, the midnight after today."""
        day = date.fromisoformat(self.parameters.date_range.end_date) if self.parameters.date_range else self.now.date()
        return midnight(day + timedelta(days=1))

    def bind(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            **self.scope.params,
            "range_end": sql_time(self.end),
            "range_start": "1970-01-01 00:00:00.000",
            # the learning-progress query's own (learner-transcript)
            "cut": sql_time(self.end),
            "dropped_days": self.dropped_after_days,
            # compliance: completed before the midnight after dueDate
            "due": sql_time(self.end),
            "inactive_days": self.parameters.inactive_days or DEFAULT_INACTIVE_DAYS,
            "recent_days": self.parameters.recent_score_days or DEFAULT_RECENT_SCORE_DAYS,
            "score_drop": DEFAULT_SCORE_DROP if self.parameters.score_drop is None else self.parameters.score_drop,
        }
        if self.parameters.due_date:
            params["due"] = sql_time(midnight(date.fromisoformat(self.parameters.due_date) + timedelta(days=1)))
        if self.parameters.date_range:
            params["range_start"] = sql_time(midnight(date.fromisoformat(self.parameters.date_range.start_date)))
        for name in _LISTS:
            params[f"f_{name}"] = orjson.dumps(getattr(self.filters, name) or []).decode()
        return params

    def users(self) -> str:
        """Users of the scope, narrowed by filters.learnerIds and filters.departmentIds."""
        condition = self.scope.users()
        if self.filters.learner_ids:
            condition += f" AND user_id IN {listed('learner_ids')}"
        if self.filters.department_ids:
            condition += f""" AND user_id IN (SELECT user_id FROM learners WHERE {self.scope.organizations()}
                GROUP BY user_id HAVING argMaxMerge(department_id) IN {listed('department_ids')})"""
        return condition

    def courses(self, column: str = "course_id") -> str:
        return f" AND {column} IN {listed('course_ids')}" if self.filters.course_ids else ""

    def classes(self, column: str = "class_id") -> str:
        return f" AND {column} IN {listed('class_ids')}" if self.filters.class_ids else ""

    def event_types(self, column: str = "event_type") -> str:
        return f" AND {column} IN {listed('event_types')}" if self.filters.event_types else ""

    def days(self, column: str = "event_date") -> str:
        """The range's days: [toDate(s), toDate(e))."""
        return f" AND {column} >= toDate({START}) AND {column} < toDate({END})"


def request_for(scope: Scope, parameters: Parameters, dropped_after_days: int, now: datetime | None = None) -> Request:
    return Request(scope, parameters, dropped_after_days, now or datetime.now(UTC))

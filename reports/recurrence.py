"""When a schedule runs: its occurrences as UTC instants, from a cron
expression (or a frequency of the lookup values) read in an IANA timezone.

croniter is given naive wall-clock times and answers naive wall-clock
times; each is then placed in the timezone with zoneinfo. croniter given
zone-aware times gets daylight-saving changes wrong (measured, croniter
5.0: a 01:30 New York daily schedule ran twice on 2027-03-15 and at 02:30
EST on 2027-11-08; a 02:30 Berlin one at 03:30 CET on 2027-11-01).

What a wall-clock time means on the two nights a year it is not one
instant (README, "Report schedules"), as PEP 495's fold=0 reads it:

    skipped (spring forward: 02:30 in Berlin on 2027-03-28)
        runs once, as late after the gap as it was into it: 03:30 CEST
    repeated (fall back: 01:30 in New York on 2027-11-07)
        runs once, at its first occurrence: 01:30 EDT

Two wall-clock times that land on one instant (02:30 and 03:30 on the
spring night) run once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from lms_events.errors import BadRequest

# Wider than any daylight-saving shift (1 h; 30 min on Lord Howe): iteration starts this much
# before an instant's wall-clock time, so the first candidate after it is never skipped.
_MARGIN = timedelta(hours=3)
# How far back `latest` looks for a missed occurrence before giving up (a yearly schedule).
_LOOKBACK_STEPS = 10_000
CRON_FIELDS = 5
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MAX_DAY_OF_MONTH = 28  # in every month: "the 31st" would silently skip months


def zone(name: str, field: str = "timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"{field} must be an IANA timezone such as Europe/Berlin; got {name!r}", field=field) from None


def wall_time(value: str, field: str) -> time:
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or len(value) != 5:
        raise BadRequest(f"{field} must be HH:MM (24-hour wall-clock time); got {value!r}", field=field)
    return parsed


def checked_cron(expression: str, field: str = "cronExpression") -> str:
    """Five fields (minute hour day-of-month month day-of-week) that croniter reads and that ever fire."""
    if len(expression.split()) != CRON_FIELDS or not croniter.is_valid(expression):
        raise BadRequest(
            f"{field} must be a cron expression of 5 fields (minute hour day month weekday); got {expression!r}",
            field=field,
        )
    try:
        croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterBadDateError, CroniterBadCronError):
        raise BadRequest(f"{field} {expression!r} never fires (e.g. the 30th of February)", field=field) from None
    return expression


def frequency_cron(frequency: str, at: time, day_of_week: int | None, day_of_month: int | None) -> str | None:
    """The cron expression of a lookup frequency; None for `once` (one run at startDate, timeOfDay)."""
    minute_hour = f"{at.minute} {at.hour}"
    if frequency == "daily":
        return f"{minute_hour} * * *"
    if frequency == "weekly":
        return f"{minute_hour} * * {1 if day_of_week is None else day_of_week}"
    if frequency == "monthly":
        return f"{minute_hour} {day_of_month or 1} * *"
    if frequency == "quarterly":
        return f"{minute_hour} {day_of_month or 1} 1,4,7,10 *"
    return None


def _margin(instant: datetime, tz: ZoneInfo) -> timedelta:
    """_MARGIN near a change of the zone's offset, a minute elsewhere (iteration stays short)."""
    if (instant - _MARGIN).astimezone(tz).utcoffset() != (instant + _MARGIN).astimezone(tz).utcoffset():
        return _MARGIN
    return timedelta(minutes=1)


def localized(wall: datetime, tz: ZoneInfo) -> datetime:
    """A naive wall-clock time as a UTC instant (fold=0: see the module's docstring)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


@dataclass(frozen=True)
class Recurrence:
    """`cron` (or, for a one-off, `once`: a naive wall-clock time) in `tz`, between the local
    midnight starting `start` and the one ending `end`."""

    tz: ZoneInfo
    cron: str | None = None
    once: datetime | None = None
    start: date | None = None
    end: date | None = None

    @property
    def _first(self) -> datetime | None:
        return None if self.start is None else localized(datetime.combine(self.start, time()), self.tz)

    @property
    def _stop(self) -> datetime | None:
        return None if self.end is None else localized(datetime.combine(self.end + timedelta(days=1), time()), self.tz)

    def _within(self, instant: datetime) -> bool:
        first, stop = self._first, self._stop
        return (first is None or instant >= first) and (stop is None or instant < stop)

    def after(self, instant: datetime) -> Iterator[datetime]:
        """The occurrences strictly after `instant`, in order (UTC)."""
        if self.once is not None:
            due = localized(self.once, self.tz)
            if due > instant and self._within(due):
                yield due
            return
        assert self.cron is not None
        first = self._first
        since = max(instant, first - timedelta(microseconds=1)) if first is not None else instant
        walls = croniter(self.cron, since.astimezone(self.tz).replace(tzinfo=None) - _margin(since, self.tz))
        previous = since
        while True:
            try:
                due = localized(walls.get_next(datetime), self.tz)
            except CroniterBadDateError:
                return
            if due <= previous:  # before `since`, or a second wall-clock time on the same instant
                continue
            if not self._within(due):
                return
            previous = due
            yield due

    def next_after(self, instant: datetime) -> datetime | None:
        return next(self.after(instant), None)

    def latest(self, after: datetime, now: datetime) -> tuple[datetime | None, int]:
        """The last occurrence in (after, now], and how many occurrences before it in that span
        (counted up to _LOOKBACK_STEPS): what a scheduler back from downtime runs, and skips."""
        if self.once is not None:
            due = self.next_after(after)
            return (due, 0) if due is not None and due <= now else (None, 0)
        assert self.cron is not None
        walls = croniter(self.cron, now.astimezone(self.tz).replace(tzinfo=None) + _margin(now, self.tz))
        found: datetime | None = None
        seen: datetime | None = None
        earlier = 0
        first, stop = self._first, self._stop
        for _ in range(_LOOKBACK_STEPS):
            try:
                due = localized(walls.get_prev(datetime), self.tz)
            except CroniterBadDateError:
                break
            if due > now or (stop is not None and due >= stop) or due == seen:
                continue  # not yet due, past endDate, or a second wall-clock time on one instant
            if due <= after or (first is not None and due < first):
                break
            seen = due
            if found is None:
                found = due
            else:
                earlier += 1
        return found, earlier

    def upcoming(self, instant: datetime, count: int) -> list[datetime]:
        occurrences = []
        for due in self.after(instant):
            occurrences.append(due)
            if len(occurrences) >= count:
                break
        return occurrences

"""When schedules run, across the daylight-saving changes of 2027 (README,
"Report schedules"): wall-clock times iterated by croniter, placed in the
timezone by zoneinfo. The instants croniter gives when handed zone-aware
times (the issue's measurements) are asserted absent.

    Europe/Berlin      2027-03-28 02:00 -> 03:00 (CET -> CEST), 2027-10-31 03:00 -> 02:00
    America/New_York   2027-03-14 02:00 -> 03:00 (EST -> EDT),  2027-11-07 02:00 -> 01:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lms_events.errors import BadRequest
from reports.plan_models import Definition, ReportScheduleRequest
from reports.recurrence import Recurrence, checked_cron, zone
from reports.schedules import recurrence

BERLIN, NEW_YORK = zone("Europe/Berlin"), zone("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def days(recurring: Recurrence, since: datetime, count: int) -> list[str]:
    return [due.astimezone(recurring.tz).isoformat() for due in recurring.upcoming(since, count)]


def test_berlin_0230_on_the_night_it_is_skipped_runs_at_0330_summer_time_once() -> None:
    daily = Recurrence(BERLIN, cron="30 2 * * *")
    assert days(daily, utc(2027, 3, 26, 12), 3) == [
        "2027-03-27T02:30:00+01:00",
        "2027-03-28T03:30:00+02:00",  # 02:30 does not exist: as late after the gap as it was into it
        "2027-03-29T02:30:00+02:00",
    ]
    # 02:30 and 03:30 land on one instant that night: one run
    both = Recurrence(BERLIN, cron="30 2,3 * * *")
    assert [d.isoformat() for d in both.upcoming(utc(2027, 3, 27, 12), 2)] == ["2027-03-28T01:30:00+00:00", "2027-03-29T00:30:00+00:00"]


def test_berlin_0230_on_the_night_it_happens_twice_runs_once_at_the_first() -> None:
    daily = Recurrence(BERLIN, cron="30 2 * * *")
    assert [d.isoformat() for d in daily.upcoming(utc(2027, 10, 30, 12), 3)] == [
        "2027-10-31T00:30:00+00:00",  # 02:30 CEST; not again at 02:30 CET (01:30Z)
        "2027-11-01T01:30:00+00:00",  # 02:30 CET, not croniter's 03:30 CET
        "2027-11-02T01:30:00+00:00",
    ]
    # asked again right after the first 02:30: the second one is not a run
    assert daily.next_after(utc(2027, 10, 31, 0, 30)) == utc(2027, 11, 1, 1, 30)


def test_new_york_0130_across_both_changes() -> None:
    daily = Recurrence(NEW_YORK, cron="30 1 * * *")
    spring = [d.isoformat() for d in daily.upcoming(utc(2027, 3, 13, 12), 3)]
    assert spring == ["2027-03-14T06:30:00+00:00", "2027-03-15T05:30:00+00:00", "2027-03-16T05:30:00+00:00"]
    # croniter with zone-aware times ran twice on 03-15 (00:30 and 01:30 EDT)
    assert "2027-03-15T04:30:00+00:00" not in spring
    autumn = [d.isoformat() for d in daily.upcoming(utc(2027, 11, 6, 12), 3)]
    # 01:30 EDT once (not again at 01:30 EST), then 01:30 EST, not croniter's 02:30 EST
    assert autumn == ["2027-11-07T05:30:00+00:00", "2027-11-08T06:30:00+00:00", "2027-11-09T06:30:00+00:00"]
    # a scheduler that fired 01:30 EDT and looks again during the repeated hour (01:40 EST) finds nothing that day
    assert daily.next_after(utc(2027, 11, 7, 6, 40)) == utc(2027, 11, 8, 6, 30)


def test_new_york_0230_on_the_skipped_night_runs_at_0330_daylight_time() -> None:
    daily = Recurrence(NEW_YORK, cron="30 2 * * *")
    assert days(daily, utc(2027, 3, 13, 12), 2) == ["2027-03-14T03:30:00-04:00", "2027-03-15T02:30:00-04:00"]


def test_latest_missed_occurrence_and_the_count_skipped() -> None:
    hourly = Recurrence(BERLIN, cron="0 * * * *")
    due, skipped = hourly.latest(utc(2027, 10, 30, 22), utc(2027, 10, 31, 22, 30))
    # after 00:00 CEST: the hours 01:00 .. 23:00 of a 25-hour day, the repeated 02:00 once: 23 occurrences
    assert due == utc(2027, 10, 31, 22) and skipped == 22
    assert hourly.latest(utc(2027, 10, 31, 22), utc(2027, 10, 31, 22, 59)) == (None, 0)


def test_start_and_end_are_local_days() -> None:
    bounded = Recurrence(NEW_YORK, cron="0 23 * * *", start=datetime(2027, 1, 2).date(), end=datetime(2027, 1, 3).date())
    assert [d.isoformat() for d in bounded.upcoming(utc(2026, 12, 1), 5)] == ["2027-01-03T04:00:00+00:00", "2027-01-04T04:00:00+00:00"]


def _request(**fields: object) -> ReportScheduleRequest:
    return ReportScheduleRequest(name="s", definition=Definition(report_type="learner-activity"), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cron_expression": "61 * * * *"}, "cronExpression"),
        ({"cron_expression": "0 0 * * * *"}, "cronExpression"),  # six fields
        ({"cron_expression": "0 0 30 2 *"}, "cronExpression"),  # never fires
        ({"cron_expression": "0 6 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"frequency": "fortnightly"}, "frequency"),
        ({}, "cronExpression"),  # neither
        ({"cron_expression": "0 6 * * *", "frequency": "daily"}, "cronExpression"),  # both
        ({"frequency": "daily", "time_of_day": "25:00"}, "timeOfDay"),
        ({"frequency": "once"}, "startDate"),
        ({"frequency": "daily", "start_date": "2027-02-01", "end_date": "2027-01-01"}, "endDate"),
    ],
)
def test_a_bad_timing_is_400_naming_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(BadRequest) as raised:
        recurrence(_request(**fields))
    assert raised.value.field == field


def test_frequencies_read_as_cron_in_the_timezone() -> None:
    weekly = recurrence(_request(frequency="weekly", time_of_day="07:15", day_of_week=1, timezone="Europe/Berlin"))
    assert days(weekly, utc(2027, 3, 24), 2) == ["2027-03-29T07:15:00+02:00", "2027-04-05T07:15:00+02:00"]
    quarterly = recurrence(_request(frequency="quarterly", day_of_month=15))
    assert [d.date().isoformat() for d in quarterly.upcoming(utc(2027, 1, 1), 4)] == ["2027-01-15", "2027-04-15", "2027-07-15", "2027-10-15"]
    once = recurrence(_request(frequency="once", start_date="2027-11-07", time_of_day="01:30", timezone="America/New_York"))
    assert once.upcoming(utc(2027, 1, 1), 3) == [utc(2027, 11, 7, 5, 30)]
    assert checked_cron("*/15 9-17 * * 1-5") == "*/15 9-17 * * 1-5"

"""Query parameters of the read side, parsed and checked once.

A bad value is a BadRequest naming the parameter and the rule. Windows
follow METRICS.md's ground rules: whole UTC days, `until` is the last
day of the window (default today), the window is [e - timeframe, e) with
e the midnight after `until`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson

from lms_events.errors import BadRequest

TIMEFRAMES = {"7d": 7, "30d": 30, "90d": 90, "1y": 365}
DEFAULT_TIMEFRAME = "30d"
FILTER_FIELDS = ("departmentId", "courseId", "classId")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_ID_LENGTH = 128
# ClickHouse's Date range, less a year of windows on either side: what a window can be computed over.
FIRST_DAY = date(1971, 1, 1)
LAST_DAY = date(2148, 12, 31)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """[start, end) in whole UTC days, and the window before it."""

    timeframe: str
    start: datetime
    end: datetime

    @property
    def previous(self) -> Window:
        return Window(self.timeframe, self.start - (self.end - self.start), self.start)

    @property
    def days(self) -> list[date]:
        first = self.start.date()
        return [first + timedelta(days=n) for n in range((self.end - self.start).days)]


def until_day(query: Mapping[str, str], today: date | None = None) -> date:
    raw = query.get("until")
    if not raw:
        return today or datetime.now(UTC).date()
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"until must be a UTC date YYYY-MM-DD, got {raw!r}", field="until") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadRequest(f"until must be between {FIRST_DAY} and {LAST_DAY}", field="until")
    return day


def cutoff(query: Mapping[str, str]) -> datetime:
    """e: the midnight after `until`."""
    return midnight(until_day(query) + timedelta(days=1))


def window(query: Mapping[str, str]) -> Window:
    timeframe = query.get("timeframe") or DEFAULT_TIMEFRAME
    if timeframe not in TIMEFRAMES:
        raise BadRequest(f"timeframe must be one of {', '.join(TIMEFRAMES)}, got {timeframe!r}", field="timeframe")
    end = cutoff(query)
    return Window(timeframe, end - timedelta(days=TIMEFRAMES[timeframe]), end)


def identifier(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_ID_LENGTH:
        raise BadRequest(f"{name} is at most {MAX_ID_LENGTH} characters", field=name)
    if not value.isprintable() or not _encodable(value):
        raise BadRequest(f"{name} must be printable text (no control characters)", field=name)
    return value


_BOOLEANS = {"true": True, "false": False}


def boolean(query: Mapping[str, str], name: str) -> bool | None:
    """An optional `true` / `false` query parameter."""
    raw = query.get(name)
    if raw is None:
        return None
    if raw not in _BOOLEANS:
        raise BadRequest(f"{name} must be true or false; got {raw!r}", field=name)
    return _BOOLEANS[raw]


def _encodable(value: str) -> bool:
    """False for lone surrogates (JSON escapes can carry them): no UTF-8 column can hold them."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def filters(query: Mapping[str, str]) -> dict[str, str]:
    """The dashboard's `filters` (JSON object of departmentId, courseId, classId strings)."""
    raw = query.get("filters")
    if not raw:
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("filters must be a JSON object", field="filters") from None
    if not isinstance(parsed, dict):
        raise BadRequest("filters must be a JSON object", field="filters")
    unknown = sorted(set(parsed) - set(FILTER_FIELDS))
    if unknown:
        raise BadRequest(f"unknown filter {unknown[0]!r}; filters are {', '.join(FILTER_FIELDS)}", field=f"filters.{unknown[0]}")
    checked: dict[str, str] = {}
    for name, value in parsed.items():
        if not isinstance(value, str) or not value:
            raise BadRequest(f"filters.{name} must be a non-empty string", field=f"filters.{name}")
        checked[name] = identifier(value, f"filters.{name}")  # type: ignore[assignment]
    return checked


def limit(query: Mapping[str, str]) -> int:
    raw = query.get("limit")
    if not raw:
        return DEFAULT_PAGE_SIZE
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"limit must be an integer, got {raw!r}", field="limit") from None
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")
    return value


def encode_cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode().rstrip("=")


def decode_cursor(query: Mapping[str, str], size: int) -> list[Any] | None:
    """The keyset position a `nextCursor` carried (a list of `size` values), or None."""
    raw = query.get("cursor")
    if not raw:
        return None
    try:
        position = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        raise BadRequest("cursor is not one this API returned", field="cursor") from None
    if not isinstance(position, list) or len(position) != size or not all(isinstance(v, (str, int)) for v in position):
        raise BadRequest("cursor is not one this API returned", field="cursor")
    return position


def instant(query: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 date or date-time parameter as a UTC instant (a date is its midnight)."""
    raw = query.get(name)
    if not raw:
        return None
    try:
        parsed = midnight(date.fromisoformat(raw)) if len(raw) == 10 else datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date or date-time, got {raw!r}", field=name) from None
    if parsed.tzinfo is None:
        raise BadRequest(f"{name} needs a time zone (e.g. Z)", field=name)
    if not FIRST_DAY <= parsed.date() <= LAST_DAY:
        raise BadRequest(f"{name} must be between {FIRST_DAY} and {LAST_DAY}", field=name)
    return parsed.astimezone(UTC)


def sql_time(moment: datetime) -> str:
    """A UTC instant as ClickHouse parses it from a String parameter (toDateTime64(..., 3, 'UTC'))."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def iso_z(value: str | datetime | None) -> str | None:
    """A ClickHouse DateTime64 (as JSON gives it: 'YYYY-MM-DD HH:MM:SS.mmm') in answer form: ISO 8601, Z."""
    if value is None:
        return None
    if isinstance(value, datetime):  # clickhouse-connect: naive values are UTC, as the columns are
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return value.replace(" ", "T") + ("Z" if "." in value else ".000Z")


def narrowing(
    filters: dict[str, str], time_column: str, start: datetime | None, end: datetime | None
) -> tuple[str, dict[str, Any]]:
    """` AND ...` conditions (and their bound parameters) for equal-column filters and a [start, end) range."""
    conditions, bound = "", {}
    for column, value in filters.items():
        conditions += f" AND {column} = {{{column}:String}}"
        bound[column] = value
    if start is not None:
        conditions += f" AND {time_column} >= toDateTime64({{start:String}}, 3, 'UTC')"
        bound["start"] = sql_time(start)
    if end is not None:
        conditions += f" AND {time_column} < toDateTime64({{end:String}}, 3, 'UTC')"
        bound["end"] = sql_time(end)
    return conditions, bound

"""The one timestamp format the pipeline stores: `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, ms).

Most clients already send it. Two such strings order like the moments
they name, so the gateway's time checks compare strings and parse only
the other RFC 3339 spellings (offsets, other precisions).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# A real moment in the canonical form, month lengths included: a match (truthy)
# or None. 29 February and leap seconds (valid RFC 3339, but not a moment
# Python or ClickHouse can hold) take the parsing path, which decides them.
# The compiled method itself, not a wrapper: it runs once an event.
is_canonical = re.compile(
    r"\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z",
    re.ASCII,
).fullmatch


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(value: str) -> datetime | None:
    """An RFC 3339 timestamp (as the schema's `date-time` admits it) as an aware
    datetime; None for what no clock stores (a leap second) or lacks an offset."""
    try:
        # RFC 3339 allows lower-case "t" and "z"; Python's parser does not.
        moment = datetime.fromisoformat(value.upper())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None

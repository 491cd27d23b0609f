"""The one timestamp format the pipeline stores: `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, ms).

Most clients already send it. Two such strings order like the moments
they name, so the gateway's time checks compare strings and parse only
the other RFC 3339 spellings (offsets, other precisions).
"""

from __future__ import annotations

from datetime import UTC, datetime


def is_canonical(value: str) -> bool:
    # Seconds below 60: a leap second is valid RFC 3339 but not a moment Python
    # or ClickHouse can hold, so it takes the parsing path and is refused there.
    return len(value) == 24 and value[10] == "T" and value[19] == "." and value[23] == "Z" and value[17] < "6"


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

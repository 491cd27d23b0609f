"""Privacy rules applied to each accepted event before it is published.

Retention (Event Model seed): standard events 7 years, sensitive 3 years,
pii 1 year. A client may ask for less, never for more.
"""

from __future__ import annotations

from typing import Any

import schemas

DEFAULT_PRIVACY_LEVEL = "standard"


def retention_caps() -> dict[str, int]:
    return schemas.load("retention.json")["privacy_level_days"]


def retention_days(event: dict[str, Any]) -> int:
    cap = retention_caps()[event.get("privacy_level") or DEFAULT_PRIVACY_LEVEL]
    requested = event.get("retention_days")
    return min(requested, cap) if isinstance(requested, int) else cap

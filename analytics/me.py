"""`GET /api/v1/me/data-usage`: what lms-events collects about the caller,
how long each kind is kept, and how many rows it holds about them (Event
Model seed, UX: transparency). Every role asks about themselves only."""

from __future__ import annotations

from typing import Any

import orjson

import schemas
from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore
from lms_events.personal_data import rows_about


async def _consent(store: ClickHouseStore, organization_id: str, user_id: str) -> dict[str, Any] | None:
    rows = await store.query(
        "SELECT categories, age_band, parental_consent, updated_at FROM consent_records FINAL "
        "WHERE organization_id = {org:String} AND user_id = {user:String}",
        {"org": organization_id, "user": user_id},
    )
    return rows[0] if rows else None


async def data_usage(store: ClickHouseStore, scope: Scope) -> dict[str, Any]:
    organization_id = scope.require_organization()
    rules = schemas.load("privacy.json")
    record = await _consent(store, organization_id, scope.sub)
    chosen = orjson.loads(record["categories"]) if record else {}
    categories = rules["consent_categories"]
    defaults = rules["default_consent"]
    return {
        "userId": scope.sub,
        "organizationId": organization_id,
        "consent": {
            "source": "record" if record else "defaults",
            "categories": {category: bool(chosen.get(category, defaults.get(category, True))) for category in categories},
            "ageBand": record["age_band"] if record else None,
            "parentalConsent": record["parental_consent"] if record else None,
            # stored as the gateway stamped it: ISO 8601, milliseconds, Z
            "updatedAt": (record["updated_at"] or None) if record else None,
        },
        "retentionDays": {
            "byPrivacyLevel": rules["retention_days"]["by_privacy_level"],
            "byCategory": rules["retention_days"]["by_category"],
        },
        "storedRows": await rows_about(store, organization_id, scope.sub),
    }

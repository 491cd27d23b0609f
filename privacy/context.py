"""What erasure and export jobs work with, gathered once by the app."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from ingest.privacy import PrivacyFilter
from lms_events.clickhouse import ClickHouseStore
from lms_events.settings import Settings
from lms_events.tombstones import TombstoneSet

EXPORTS_DIR = "exports"


@dataclass(frozen=True)
class PrivacyContext:
    settings: Settings
    store: ClickHouseStore
    redis: Redis
    # the gateway's rules: a person's `pii` pseudonym is computed as the gateway computes it
    privacy: PrivacyFilter
    tombstones: TombstoneSet

    def identities(self, organization_id: str, user_id: str) -> dict[str, str]:
        """The query parameters naming one person (lms_events/personal_data.py: Source)."""
        return {"org": organization_id, "id": user_id, "alias": self.privacy.pseudonym(organization_id, user_id)}

    @property
    def exports_dir(self) -> Path:
        return self.settings.data_dir / EXPORTS_DIR

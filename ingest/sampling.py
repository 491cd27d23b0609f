"""Sampling per the Event Model seed, deterministic on event_id.

Sampling classes come from `schemas/taxonomy.json`: `never` (user actions,
learning progress, errors, business events), `performance` (10 % in
production, 100 % in development), `high_volume` (page views, mouse
movements: 1 %), `debug` (development only). A retried event hashes to the
same bucket, so retries are sampled the same way.
"""

from __future__ import annotations

import hashlib

from ingest.taxonomy import EventType
from lms_events.settings import Settings

BUCKETS = 10_000


def bucket(event_id: str) -> int:
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


class Sampler:
    def __init__(self, *, performance: float, high_volume: float, collect_debug: bool) -> None:
        self.rates = {
            "never": 1.0,
            "performance": performance,
            "high_volume": high_volume,
            "debug": 1.0 if collect_debug else 0.0,
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> Sampler:
        return cls(
            performance=settings.performance_sample_rate,
            high_volume=settings.sample_high_volume,
            collect_debug=settings.debug_events_collected,
        )

    def keep(self, event_type: EventType, event_id: str) -> bool:
        rate = self.rates[event_type.sampling]
        if rate >= 1.0:
            return True
        if rate <= 0.0:
            return False
        return bucket(event_id) < rate * BUCKETS

"""Privacy rules applied to each accepted event before it is published.

Rules and field lists are data (`schemas/privacy.json`):
- retention: standard 7 years, sensitive 3, pii 1, system events 1; a
  client may ask for less, never more. ClickHouse TTLs enforce it.
- `pii` events are anonymized at once: identifiers are replaced by an
  HMAC pseudonym keyed per organization (so the same learner stays one
  pseudonym inside an organization and cannot be joined across
  organizations), free-text PII fields are dropped.
- users under 13 without parental consent (COPPA): free-text PII, user
  agent and IP are dropped. The platform's opaque user id is kept: it is
  the school's educational record key (FERPA school-official use).
- the client IP is truncated (IPv4 /24, IPv6 /48) before it is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from msgspec import UNSET, Raw

import schemas
from ingest.consent import ConsentRecord
from ingest.events import StoredEvent, encode, load_sub_object
from ingest.taxonomy import EventType
from lms_events import secret_files
from lms_events.retention import RetentionPolicy

DEFAULT_PRIVACY_LEVEL = "standard"
PSEUDONYM_PREFIX = "anon_"
SECRET_FILE = "pii_secret"


def pii_secret(configured: str | None, data_dir: Path) -> bytes:
    """The pseudonymisation secret: configured, or generated once into the data dir."""
    return secret_files.load_or_create_secret(configured, data_dir, SECRET_FILE)


def truncate_ip(ip: str | None) -> str:
    if not ip:
        return ""
    rules = schemas.load("privacy.json")["ip_truncation"]
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    prefix = rules["ipv4_prefix"] if address.version == 4 else rules["ipv6_prefix"]
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _by_parent(paths: list[str]) -> dict[str | None, list[str]]:
    """Dotted paths grouped by the sub-object they are in (None: the event itself)."""
    grouped: dict[str | None, list[str]] = {}
    for path in paths:
        parent, _, name = path.rpartition(".")
        grouped.setdefault(parent or None, []).append(name)
    return grouped


class PrivacyFilter:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._org_keys: dict[str, bytes] = {}
        rules = schemas.load("privacy.json")
        self._level_days: dict[str, int] = rules["retention_days"]["by_privacy_level"]
        self._category_days: dict[str, int] = rules["retention_days"]["by_category"]
        self._identifiers = _by_parent(rules["identifier_fields"])
        self._free_text = _by_parent(rules["free_text_pii_fields"])
        # Organizations that keep less than the seed (lms_events/retention.py), reloaded by the gateway.
        self.policies: Mapping[str, RetentionPolicy] = {}
        # Every (privacy level, category) cap, computed once.
        self._caps = {
            (level, category): min(days, self._category_days.get(category, days))
            for level, days in self._level_days.items()
            for category in schemas.load("taxonomy.json")["categories"]
        }

    def _org_key(self, organization_id: str) -> bytes:
        key = self._org_keys.get(organization_id)
        if key is None:
            key = hmac.new(self._secret, organization_id.encode(), hashlib.sha256).digest()
            self._org_keys[organization_id] = key
        return key

    def pseudonym(self, organization_id: str, value: str) -> str:
        digest = hmac.new(self._org_key(organization_id), value.encode(), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:32]

    def _drop_free_text(self, event: StoredEvent) -> None:
        for parent, names in self._free_text.items():
            if parent is None:
                for name in names:
                    setattr(event, name, UNSET)
                continue
            fields = _sub_object(event, parent)
            if fields is not None and not fields.keys().isdisjoint(names):
                _replace_sub_object(event, parent, {k: v for k, v in fields.items() if k not in names})

    def _pseudonymize(self, event: StoredEvent) -> None:
        organization_id = event.organization_id
        for parent, names in self._identifiers.items():
            if parent is None:
                for name in names:
                    value = getattr(event, name)
                    if isinstance(value, str) and value:
                        setattr(event, name, self.pseudonym(organization_id, value))
                continue
            fields = _sub_object(event, parent) or {}
            present = [name for name in names if isinstance(fields.get(name), str) and fields[name]]
            for name in present:
                fields[name] = self.pseudonym(organization_id, fields[name])
            if present:
                _replace_sub_object(event, parent, fields)

    def apply(self, event: StoredEvent, event_type: EventType, consent: ConsentRecord | None) -> StoredEvent:
        """Apply the rules to `event` in place and return it. Expects the client's
        privacy_level and retention_days (or UNSET) and the truncated client IP."""
        level = event.privacy_level = event.privacy_level or DEFAULT_PRIVACY_LEVEL
        cap = self._caps[level, event_type.category]
        policy = self.policies.get(event.organization_id) if self.policies else None
        if policy is not None:
            cap = policy.cap(level, event_type.category, cap)
        requested = event.retention_days
        event.retention_days = min(int(requested), cap) if requested else cap
        coppa = consent is not None and consent.coppa_restricted
        if level == "pii" or coppa:
            self._drop_free_text(event)
        if level == "pii":
            self._pseudonymize(event)
        if coppa:
            event.client_ip = ""
        return event


def _sub_object(event: StoredEvent, name: str) -> dict[str, Any] | None:
    raw = getattr(event, name)
    fields = load_sub_object(raw) if raw is not UNSET else None
    return fields if isinstance(fields, dict) else None


def _replace_sub_object(event: StoredEvent, name: str, fields: dict[str, Any]) -> None:
    setattr(event, name, Raw(encode(fields)))

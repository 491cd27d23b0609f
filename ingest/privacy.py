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
import secrets
from pathlib import Path
from typing import Any

import schemas
from ingest.consent import ConsentRecord
from ingest.taxonomy import EventType

DEFAULT_PRIVACY_LEVEL = "standard"
PSEUDONYM_PREFIX = "anon_"
SECRET_FILE = "pii_secret"


def load_or_create_secret(configured: str | None, data_dir: Path) -> bytes:
    """The pseudonymisation secret: configured, or generated once into the data dir."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip().encode()


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


def _split(path: str) -> tuple[str | None, str]:
    head, _, tail = path.rpartition(".")
    return (head or None), tail


class PrivacyFilter:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._org_keys: dict[str, bytes] = {}
        rules = schemas.load("privacy.json")
        self._level_days: dict[str, int] = rules["retention_days"]["by_privacy_level"]
        self._category_days: dict[str, int] = rules["retention_days"]["by_category"]
        self._identifiers = [_split(p) for p in rules["identifier_fields"]]
        self._free_text = [_split(p) for p in rules["free_text_pii_fields"]]
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

    def _drop_free_text(self, event: dict[str, Any]) -> None:
        for parent, name in self._free_text:
            if parent is None:
                event.pop(name, None)
            elif isinstance(event.get(parent), dict) and name in event[parent]:
                event[parent] = {k: v for k, v in event[parent].items() if k != name}

    def _pseudonymize(self, event: dict[str, Any]) -> None:
        organization_id = event.get("organization_id") or ""
        for parent, name in self._identifiers:
            container = event if parent is None else event.get(parent)
            if isinstance(container, dict) and isinstance(container.get(name), str) and container[name]:
                if parent is not None:
                    container = event[parent] = dict(container)
                container[name] = self.pseudonym(organization_id, container[name])

    def apply(
        self, event: dict[str, Any], event_type: EventType, consent: ConsentRecord | None, truncated_ip: str
    ) -> dict[str, Any]:
        """Apply the rules to `event` in place (pass your own copy) and return it.
        `truncated_ip` is the request's client IP after `truncate_ip`."""
        level = event["privacy_level"] = event.get("privacy_level") or DEFAULT_PRIVACY_LEVEL
        cap = self._caps[level, event_type.category]
        requested = event.get("retention_days")
        event["retention_days"] = min(requested, cap) if isinstance(requested, int) else cap
        coppa = consent is not None and consent.coppa_restricted
        if level == "pii" or coppa:
            self._drop_free_text(event)
        if level == "pii":
            self._pseudonymize(event)
        event["client_ip"] = "" if coppa else truncated_ip
        return event

"""The identity of a domain event: what makes a replayed or re-posted one the same fact.

A producer may send `eventId`; the same eventId is the same fact. Without
one, the identity is a digest of the event's canonical JSON (sorted keys,
no whitespace) as the producer sent it, so posting the same body twice
gives the same id. It is computed before the gateway (or `reference load`)
stamps `occurredAt`, which differs on every post, and without
`organizationId`, which is the fact's scope rather than its content (the
write key's organization, whether the producer named it or not).

Shared by the gateway, the bulk reference load and the stream app, so it
sits below all three.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

DIGEST_PREFIX = "sha256:"
# Fields a gateway adds to what the producer sent; older gateways published
# without eventId, so the stream leaves these out to recover the sent content.
STAMPED_FIELDS = frozenset({"organizationId", "occurredAt"})


def content_digest(event: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the canonical JSON of `event` without its organizationId."""
    content = {name: value for name, value in event.items() if name != "organizationId"}
    return DIGEST_PREFIX + hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def event_id_as_sent(event: Mapping[str, Any]) -> str:
    """The identity of an event as its producer sent it (gateway, reference load)."""
    return event.get("eventId") or content_digest(event)


def event_id_as_published(event: Mapping[str, Any]) -> str:
    """The identity of a published event: its eventId, or for a message of a gateway that
    did not set one, the digest of the message without what that gateway stamped."""
    return event.get("eventId") or content_digest({name: value for name, value in event.items() if name not in STAMPED_FIELDS})

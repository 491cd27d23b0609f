"""The demo organization `up` prepares in development: a write key kept in
the data dir (reused while active) and a subscriber-admin read token, both
printed in the banner so the README's first requests work as shown."""

from __future__ import annotations

from lms_events import tokens, write_keys
from lms_events.clickhouse import ClickHouseStore
from lms_events.settings import Settings


DEMO_ORGANIZATION = "demo-org"
DEMO_KEY_FILE = "demo_write_key"


async def demo_write_key(settings: Settings, store: ClickHouseStore) -> str:
    """A write key for the demo organization, kept in the data dir (0600) and reused while active."""
    path = settings.data_dir / DEMO_KEY_FILE
    if path.exists():
        plaintext = path.read_text().strip()
        if write_keys.hash_key(plaintext) in await write_keys.active_keys(store):
            return plaintext
    _, plaintext = await write_keys.create_key(
        store, organization_id=DEMO_ORGANIZATION, environment=settings.environment, name="demo (lms-events up)"
    )
    path.touch(mode=0o600)
    path.write_text(plaintext)
    return plaintext


def demo_read_token(settings: Settings) -> str:
    """A subscriber-admin read token of the demo organization (the README's dashboard example)."""
    secret = tokens.signing_secret(settings)
    return tokens.mint(secret, sub="demo-admin", role=tokens.Role.SUBSCRIBER_ADMIN, organization_id=DEMO_ORGANIZATION)

"""Secrets that are configured, or else generated once into the data dir (0600).

The generated form serves `lms-events up` on one machine; a fleet of
processes must be given the same value through the environment.
"""

from __future__ import annotations

import secrets
from pathlib import Path


def load_or_create_secret(configured: str | None, data_dir: Path, filename: str) -> bytes:
    if configured:
        return configured.encode()
    path = data_dir / filename
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip().encode()

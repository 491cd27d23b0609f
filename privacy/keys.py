"""Typed application keys of the erasure and export routes."""

from __future__ import annotations

from aiohttp import web

from privacy.context import PrivacyContext
from privacy.jobs import Runner

CONTEXT = web.AppKey("privacy_context", PrivacyContext)
RUNNER = web.AppKey("privacy_runner", Runner)

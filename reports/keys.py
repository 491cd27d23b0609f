"""Typed application keys of the report API."""

from __future__ import annotations

from aiohttp import web

from reports.ledger import Ledger
from reports.queue import ReportQueue
from reports.storage import ReportFiles

LEDGER = web.AppKey("reports_ledger", Ledger)
QUEUE = web.AppKey("reports_queue", ReportQueue)
STORAGE = web.AppKey("reports_storage", ReportFiles)

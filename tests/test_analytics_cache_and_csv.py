"""Cached answers and CSV exports of the analytics API.

A cached dashboard shows a newly accepted event within 5 s (the stream's
AnalyticsUpdated drops the organization's cached answers); a cached
answer never serves another scope; every GET answers CSV on request.
"""

from __future__ import annotations

import csv
import io
import time
import uuid

import orjson
from datetime import UTC, datetime

from lms_events import tokens
from lms_events.settings import Settings
from tests.support import Client, Gateway, eventually

FRESHNESS_S = 5.0
TODAY = datetime.now(UTC).date().isoformat()


def token(settings: Settings, organization_id: str, role: str = "subscriber-admin", sub: str = "admin") -> str:
    secret = tokens.signing_secret(settings)
    return tokens.mint(secret, sub=sub, role=role, organization_id=organization_id)


async def fetch(gateway: Gateway, path: str, bearer: str, **params: str) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {bearer}"}
    async with gateway.session.get(f"{gateway.url}{path}", headers=headers, params=params) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def play(client: Client, user: str, score: int) -> dict[str, object]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return client.event(event_id=str(uuid.uuid4()), user_id=user, timestamp=now, properties={"game_id": "G-00001", "stage_id": "G-00001-s1", "score": score, "duration_ms": 1000})


async def total_events(gateway: Gateway, bearer: str) -> int:
    status, _, body = await fetch(gateway, "/api/v1/dashboard", bearer, timeframe="7d", until=TODAY)
    assert status == 200, body
    return int(orjson.loads(body)["summary"]["totalEvents"])


async def test_a_cached_dashboard_shows_a_new_event_within_5_s(gateway: Gateway, settings: Settings, client: Client) -> None:
    admin = token(settings, client.organization_id)
    status, answer = await client.post_batch([play(client, "u1", 50)])
    assert status == 200 and answer["totals"]["accepted"] == 1, answer
    await eventually(lambda: total_events(gateway, admin), lambda n: n == 1, timeout=30)
    assert await total_events(gateway, admin) == 1  # cached now (60 s lifetime)

    status, answer = await client.post_batch([play(client, "u2", 70)])
    accepted_at = time.monotonic()
    assert status == 200 and answer["totals"]["accepted"] == 1
    await eventually(lambda: total_events(gateway, admin), lambda n: n == 2, timeout=FRESHNESS_S)
    assert time.monotonic() - accepted_at < FRESHNESS_S


async def test_a_cached_answer_never_serves_another_scope(gateway: Gateway, settings: Settings, client: Client) -> None:
    await client.post_batch([play(client, "u1", 50), play(client, "u2", 70)])
    admin, student = token(settings, client.organization_id), token(settings, client.organization_id, "student", "u1")
    await eventually(lambda: total_events(gateway, admin), lambda n: n == 2, timeout=30)
    for _ in range(2):  # the second round is served from the cache
        assert await total_events(gateway, admin) == 2
        assert await total_events(gateway, student) == 1


async def test_every_get_answers_csv(gateway: Gateway, settings: Settings, client: Client) -> None:
    events = [play(client, f"u{n % 3}", 10 * n) for n in range(7)]
    await client.post_batch(events)
    admin = token(settings, client.organization_id)
    await eventually(lambda: total_events(gateway, admin), lambda n: n == 7, timeout=30)

    status, content_type, body = await fetch(gateway, "/api/v1/dashboard", admin, format="csv", timeframe="7d")
    assert status == 200 and content_type.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [row["metricType"] for row in rows][:2] == ["total_users", "active_users"]
    assert rows[1]["value"] == "3"

    # A list streams every page, whatever the page size.
    status, content_type, body = await fetch(gateway, "/api/v1/events", admin, format="csv", limit="2")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert status == 200 and content_type.startswith("text/csv")
    assert sorted(row["eventId"] for row in rows) == sorted(str(event["event_id"]) for event in events)
    assert {row["score"] for row in rows} == {str(float(10 * n)) for n in range(7)}

    headers = {"Authorization": f"Bearer {admin}", "Accept": "text/csv"}
    async with gateway.session.get(f"{gateway.url}/api/v1/learning-progress", headers=headers) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
        assert await response.text() == ""  # no enrollments: no rows

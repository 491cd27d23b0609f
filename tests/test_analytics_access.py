"""The analytics API's front door: tokens, roles, parameters.

Every bad request is a 4xx naming what is wrong; no token, a bad one or
a write key in its place is 401; a role reaching beyond its organization
is 403. (What each role sees inside its organization is
tests/test_analytics_correctness.py's isolation table.)
"""

from __future__ import annotations

import time

import jwt
import pytest

from lms_events import tokens
from lms_events.settings import Settings
from tests.support import Client, Gateway, unique_org

ENDPOINTS = (
    "/api/v1/dashboard",
    "/api/v1/users/u1/analytics",
    "/api/v1/courses/c1/analytics",
    "/api/v1/assessments/a1/analytics",
    "/api/v1/learning-progress",
    "/api/v1/events",
)


def secret(settings: Settings) -> bytes:
    return tokens.signing_secret(settings)


def token(settings: Settings, role: str = "subscriber-admin", org: str | None = "org_a", sub: str = "admin", **claims: object) -> str:
    return tokens.mint(secret(settings), sub=sub, role=role, organization_id=org, **claims)  # type: ignore[arg-type]


async def get(gateway: Gateway, path: str, bearer: str | None, **params: str) -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    async with gateway.session.get(f"{gateway.url}{path}", headers=headers, params=params) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_no_token_is_401(gateway: Gateway, path: str) -> None:
    status, answer = await get(gateway, path, None)
    assert status == 401 and "token" in answer["error"]  # type: ignore[index]


async def test_bad_tokens_are_401(gateway: Gateway, settings: Settings, client: Client) -> None:
    expired = jwt.encode({"sub": "a", "role": "subscriber-admin", "org": "o", "exp": int(time.time()) - 10}, secret(settings), "HS256")
    other_secret = jwt.encode({"sub": "a", "role": "subscriber-admin", "org": "o", "exp": int(time.time()) + 60}, b"x" * 32, "HS256")
    no_exp = jwt.encode({"sub": "a", "role": "subscriber-admin", "org": "o"}, secret(settings), "HS256")
    bad_role = jwt.encode({"sub": "a", "role": "root", "org": "o", "exp": int(time.time()) + 60}, secret(settings), "HS256")
    no_org = jwt.encode({"sub": "a", "role": "teacher", "exp": int(time.time()) + 60}, secret(settings), "HS256")
    for bearer, expected in (
        (expired, "expired"),
        (other_secret, "invalid token"),
        (no_exp, "exp"),
        (bad_role, "role"),
        (no_org, "org"),
        (client.key, "invalid token"),  # a write key never reads
        ("", "token"),
    ):
        status, answer = await get(gateway, "/api/v1/dashboard", bearer)
        assert status == 401, (bearer, answer)
        assert expected in answer["error"], answer  # type: ignore[index]


async def test_a_read_token_never_writes(gateway: Gateway, settings: Settings, client: Client) -> None:
    read_token = token(settings, org=client.organization_id)
    status, _ = await client.post_batch([client.event()], headers={"Authorization": f"Bearer {read_token}"})
    assert status == 401


async def test_other_organization_is_403_for_everyone_but_system_admin(gateway: Gateway, settings: Settings) -> None:
    own, other = unique_org(), unique_org()
    for role in ("subscriber-admin", "teacher-admin", "teacher", "student"):
        status, answer = await get(gateway, "/api/v1/dashboard", token(settings, role=role, org=own), organizationId=other)
        assert status == 403 and answer["field"] == "organizationId", (role, answer)  # type: ignore[index]
    status, _ = await get(gateway, "/api/v1/dashboard", token(settings, role="system-admin", org=None), organizationId=other)
    assert status == 200


async def test_system_admin_names_the_organization_for_per_entity_figures(gateway: Gateway, settings: Settings) -> None:
    admin = token(settings, role="system-admin", org=None)
    status, answer = await get(gateway, "/api/v1/users/u1/analytics", admin)
    assert status == 400 and answer["field"] == "organizationId"  # type: ignore[index]
    status, _ = await get(gateway, "/api/v1/users/u1/analytics", admin, organizationId=unique_org())
    assert status == 404


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/dashboard", {"timeframe": "2w"}, "timeframe"),
        ("/api/v1/dashboard", {"until": "2026-13-01"}, "until"),
        ("/api/v1/dashboard", {"filters": "[1]"}, "filters"),
        ("/api/v1/dashboard", {"filters": "{not json"}, "filters"),
        ("/api/v1/dashboard", {"filters": '{"organizationId": "x"}'}, "filters.organizationId"),
        ("/api/v1/dashboard", {"filters": '{"courseId": 5}'}, "filters.courseId"),
        ("/api/v1/learning-progress", {"status": "done"}, "status"),
        ("/api/v1/learning-progress", {"limit": "0"}, "limit"),
        ("/api/v1/learning-progress", {"limit": "many"}, "limit"),
        ("/api/v1/learning-progress", {"cursor": "not-a-cursor"}, "cursor"),
        ("/api/v1/events", {"from": "yesterday"}, "from"),
        ("/api/v1/events", {"from": "2026-01-02", "to": "2026-01-01"}, "from"),
        ("/api/v1/events", {"userId": "u" * 200}, "userId"),
        ("/api/v1/events", {"userId": "tab\there"}, "userId"),
        ("/api/v1/learning-progress", {"until": "0250-09-30"}, "until"),
        ("/api/v1/events", {"from": "9999-01-01"}, "from"),
        ("/api/v1/dashboard", {"filters": '{"courseId": "\\udb48x"}'}, "filters"),
        ("/api/v1/events", {"format": "csv", "cursor": "0"}, "cursor"),
    ],
)
async def test_bad_parameters_are_400_naming_the_field(
    gateway: Gateway, settings: Settings, path: str, params: dict[str, str], field: str
) -> None:
    status, answer = await get(gateway, path, token(settings, org=unique_org()), **params)
    assert status == 400, answer
    assert answer["field"] == field, answer  # type: ignore[index]


async def test_unknown_entities_are_404(gateway: Gateway, settings: Settings) -> None:
    admin = token(settings, org=unique_org())
    for path in ENDPOINTS[1:4]:
        status, answer = await get(gateway, path, admin)
        assert status == 404, (path, answer)


async def test_an_empty_organization_answers_zeros_and_nulls(gateway: Gateway, settings: Settings) -> None:
    status, answer = await get(gateway, "/api/v1/dashboard", token(settings, org=unique_org()), timeframe="7d", until="2026-03-01")
    assert status == 200
    values = {metric["metricType"]: metric["value"] for metric in answer["metrics"]}  # type: ignore[index]
    assert values == {
        "total_users": 0,
        "active_users": 0,
        "total_courses": 0,
        "total_enrollments": 0,
        "completion_rate": 0.0,
        "average_score": None,
        "learning_hours": 0.0,
    }
    points = answer["charts"][0]["points"]  # type: ignore[index]
    assert [point["date"] for point in points] == [f"2026-02-{day}" for day in range(23, 29)] + ["2026-03-01"]
    status, page = await get(gateway, "/api/v1/learning-progress", token(settings, org=unique_org()))
    assert status == 200 and page == {"items": [], "nextCursor": None}

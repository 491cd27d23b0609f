"""The audit trail: reads of an individual's data, exports, key and consent
changes are rows of `audit_log`, readable by the organization's
administrators only."""

from __future__ import annotations

from typing import Any

from lms_events import tokens
from lms_events.settings import Settings
from tests.support import Client, Gateway, eventually, unique_org


def bearer(settings: Settings, organization_id: str | None, role: str = "subscriber-admin", sub: str = "admin") -> dict[str, str]:
    secret = tokens.signing_secret(settings)
    return {"Authorization": f"Bearer {tokens.mint(secret, sub=sub, role=role, organization_id=organization_id)}"}


async def get(gateway: Gateway, path: str, headers: dict[str, str], **params: str) -> tuple[int, Any]:
    async with gateway.session.get(f"{gateway.url}{path}", headers=headers, params=params) as response:
        return response.status, (await response.json(content_type=None) if "json" in response.content_type else await response.text())


async def trail(gateway: Gateway, settings: Settings, organization_id: str, **params: str) -> list[dict[str, Any]]:
    status, page = await get(gateway, "/api/v1/audit", bearer(settings, organization_id), **params)
    assert status == 200, page
    return page["items"]


async def test_reads_exports_keys_and_consent_changes_are_on_record(gateway: Gateway, settings: Settings, client: Client) -> None:
    org = client.organization_id
    teacher = bearer(settings, org, "teacher", "t_1")
    assert (await get(gateway, "/api/v1/users/u_audited/analytics", teacher))[0] == 404  # even a miss is a look
    assert (await get(gateway, "/api/v1/events", teacher, userId="u_audited"))[0] == 200
    assert (await get(gateway, "/api/v1/learning-progress", teacher, format="csv"))[0] == 200
    assert (await get(gateway, "/api/v1/dashboard", teacher))[0] == 200  # figures over a scope: not an individual's data
    status, _ = await _put_consent(client, "u_audited")
    assert status == 200

    rows = await eventually(lambda: trail(gateway, settings, org), lambda rows: len(rows) >= 4)
    actions = {(row["action"], row["subjectUserId"], row["actor"]) for row in rows}
    assert ("read.events", "u_audited", "t_1") in actions
    assert ("export.learning_progress", None, "t_1") in actions
    assert ("keys.create", None, "cli") in actions
    assert ("consent.change", "u_audited", client.key.split("_")[2]) in actions
    assert not any(row["action"].endswith("dashboard") for row in rows)
    assert all(row["organizationId"] == org for row in rows)
    # Filtered by subject, newest first, paginated.
    about_user = await trail(gateway, settings, org, userId="u_audited")
    assert {row["subjectUserId"] for row in about_user} == {"u_audited"}
    assert [row["at"] for row in about_user] == sorted((row["at"] for row in about_user), reverse=True)
    status, first = await get(gateway, "/api/v1/audit", bearer(settings, org), limit="1")
    assert status == 200 and len(first["items"]) == 1 and first["nextCursor"]
    status, second = await get(gateway, "/api/v1/audit", bearer(settings, org), limit="1", cursor=first["nextCursor"])
    assert second["items"] and second["items"][0] != first["items"][0]


async def _put_consent(client: Client, user_id: str) -> tuple[int, Any]:
    async with client.gateway.session.put(
        f"{client.gateway.url}/v1/consent/{user_id}", headers=client.headers, json={"categories": {"user_interaction": False}}
    ) as response:
        return response.status, await response.json()


async def test_only_administrators_read_the_trail_of_their_organization(gateway: Gateway, settings: Settings, client: Client) -> None:
    org = client.organization_id
    for role, sub in (("teacher-admin", "ta"), ("teacher", "t"), ("student", "s")):
        status, answer = await get(gateway, "/api/v1/audit", bearer(settings, org, role, sub))
        assert status == 403, (role, answer)
    await eventually(lambda: trail(gateway, settings, org), lambda rows: any(r["action"] == "keys.create" for r in rows))
    assert await trail(gateway, settings, unique_org()) == []  # another organization's admin sees nothing of it
    status, page = await get(gateway, "/api/v1/audit", bearer(settings, None, "system-admin"), organizationId=org)
    assert status == 200 and page["items"] and {row["organizationId"] for row in page["items"]} == {org}


async def test_a_learner_sees_what_is_kept_about_them(gateway: Gateway, settings: Settings, client: Client) -> None:
    me = bearer(settings, client.organization_id, "student", "u_me")
    status, usage = await get(gateway, "/api/v1/me/data-usage", me)
    assert status == 200
    assert usage["consent"]["source"] == "defaults" and usage["consent"]["categories"]["learning_progress"] is True
    assert usage["retentionDays"]["byPrivacyLevel"] == {"standard": 2555, "sensitive": 1095, "pii": 365}
    assert usage["storedRows"]["events"] == 0

    status, answer = await client.post_batch([client.event(user_id="u_me"), client.event(user_id="u_other")])
    assert answer["totals"]["accepted"] == 2
    assert (await _put_consent(client, "u_me"))[0] == 200
    usage = await eventually(
        lambda: get(gateway, "/api/v1/me/data-usage", me),
        lambda answer: answer[1]["storedRows"]["events"] == 1 and answer[1]["consent"]["source"] == "record",
    )
    assert usage[1]["consent"]["categories"]["user_interaction"] is False
    assert usage[1]["storedRows"]["consent_records"] == 1
    # Every table naming users is counted, found from system.columns.
    assert {"events", "domain_facts", "learner_activity_daily", "audit_log", "consent_records"} <= set(usage[1]["storedRows"])


async def test_a_learner_changes_their_own_consent_and_the_gateway_honours_it(
    gateway: Gateway, settings: Settings, client: Client
) -> None:
    me = bearer(settings, client.organization_id, "student", "u_self")
    async with gateway.session.put(
        f"{gateway.url}/api/v1/me/consent", headers=me, json={"categories": {"learning_progress": False}}
    ) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["consent"]["user_id"] == "u_self"
    status, answer = await client.post_batch([client.event(user_id="u_self"), client.event(user_id="u_someone")])
    assert [r["status"] for r in answer["results"]] == ["no_consent", "accepted"]
    # Bad input names the field; a write key cannot use the person's door.
    async with gateway.session.put(f"{gateway.url}/api/v1/me/consent", headers=me, json={"categories": {"learning_progress": "no"}}) as response:
        assert response.status == 400 and "categories" in (await response.json())["field"]
    async with gateway.session.put(f"{gateway.url}/api/v1/me/consent", headers=client.headers, json={"categories": {}}) as response:
        assert response.status == 401
    rows = await eventually(lambda: trail(gateway, settings, client.organization_id, userId="u_self"), bool)
    assert rows[0]["action"] == "consent.change" and rows[0]["actor"] == "u_self" and rows[0]["actorRole"] == "student"

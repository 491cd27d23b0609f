"""/openapi.json and /docs: the document is valid OpenAPI 3.1, describes
exactly the routes the app has, and every answer the running product
gives (gateway and analytics API, successes and errors) validates against
the schema the document gives for that path, method, status and content
type. /docs is Swagger UI from the installed package, nothing remote.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from aiohttp import web
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from analytics import models
from analytics.app import create_api_app
from analytics.handlers import json_answer
from lms_events import tokens
from lms_events.clickhouse import ClickHouseStore
from lms_events.docs import add_docs, described_routes
from lms_events.openapi import document
from lms_events.settings import Settings
from tests.support import Client, Gateway, eventually

JSON = "application/json"
Answer = tuple[int, str, Any]


async def fetch(gateway: Gateway, method: str, path: str, **kwargs: Any) -> Answer:
    """(status, content type, body: parsed JSON, or text for anything else)."""
    async with gateway.session.request(method, f"{gateway.url}{path}", **kwargs) as response:
        body = await response.json() if response.content_type == JSON else await response.text()
        return response.status, response.content_type, body


@pytest_asyncio.fixture(scope="module")
async def spec(gateway: Gateway) -> dict[str, Any]:
    status, content_type, body = await fetch(gateway, "GET", "/openapi.json")
    assert (status, content_type) == (200, JSON)
    return body  # type: ignore[no-any-return]


def assert_documented(spec: dict[str, Any], method: str, path: str, answer: Answer) -> None:
    """The answer is one the document promises for this operation: status, content type and body."""
    status, content_type, body = answer
    responses = spec["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, undocumented: {body!r}"
    content = responses[str(status)]["content"]
    assert content_type in content, f"{method} {path} {status} answered {content_type}, documented {list(content)}"
    # The operation's schema, resolved against the whole document (its refs are #/components/...).
    schema = {**content[content_type]["schema"], "components": spec["components"]}
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(body)


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


# The document itself ---------------------------------------------------------


def test_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    OpenAPIV31SpecValidator(spec).validate()
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    prefix = "#/components/schemas/"
    dangling = {ref for ref in refs(spec) if not ref.startswith(prefix) or ref[len(prefix) :] not in spec["components"]["schemas"]}
    assert not dangling
    # The schemas/ files' $defs are hoisted with their file's prefix, and their references follow them.
    assert spec["components"]["schemas"]["DomainEvent"]["oneOf"][0] == {"$ref": f"{prefix}DomainEvent.UserCreated"}
    assert f"{prefix}EventProperties.common" in set(refs(spec["components"]["schemas"]["EventProperties.type_game_stage_complete"]))


def test_document_lists_every_route_of_the_app(gateway: Gateway, spec: dict[str, Any]) -> None:
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in gateway.app.router.routes()
        if route.method != "HEAD"  # aiohttp's twin of each GET
        and route.resource is not None
        and not isinstance(route.resource, web.StaticResource)  # Swagger UI's files
        and not route.resource.canonical.startswith("/admin")  # the CLI's loopback API, not public
    }
    documented = {(method, path) for path, operations in spec["paths"].items() for method in operations}
    assert documented == served
    assert {("post", "/v1/batch"), ("put", "/v1/consent/{user_id}"), ("get", "/api/v1/events"), ("get", "/docs")} <= served


def test_api_role_documents_the_api_only(settings: Settings) -> None:
    """`lms-events api` serves the analytics API and analyst SQL (also over ClickHouse's HTTP interface)
    alone, and its document says so."""
    paths = set(document(described_routes(create_api_app(settings)))["paths"])
    assert {path for path in paths if not path.startswith("/api/v1/")} == {
        "/openapi.json", "/docs", "/metrics", "/clickhouse", "/clickhouse/"
    }
    privacy = ("/users/{userId}/erasure", "/erasures/{erasureId}", "/me/data-export", "/users/{userId}/data-export",
               "/data-exports/{exportId}", "/data-exports/{exportId}/download")  # fmt: skip
    assert len(paths) == 5 + len(READS) + len(("/api/v1/query", "/api/v1/query/schema")) + len(privacy)


async def test_an_undocumented_route_stops_the_app_from_starting() -> None:
    async def handler(_: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_get("/undocumented", handler)
    add_docs(app)
    runner = web.AppRunner(app)
    with pytest.raises(LookupError, match="GET /undocumented"):
        await runner.setup()
    await runner.cleanup()


def test_a_drifting_answer_fails_its_model() -> None:
    answer = {"items": [], "nextCursor": None}
    assert json_answer(answer, models.ProgressPage).body == b'{"items":[],"nextCursor":null}'
    with pytest.raises(msgspec.ValidationError, match="nextCursor"):
        json_answer({"items": []}, models.ProgressPage)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        json_answer({**answer, "total": 3}, models.ProgressPage)


# /docs -----------------------------------------------------------------------


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


async def test_docs_is_swagger_ui_from_local_assets(gateway: Gateway) -> None:
    status, content_type, page = await fetch(gateway, "GET", "/docs")
    assert (status, content_type) == (200, "text/html")
    assert '"/openapi.json"' in page
    parser = _Assets()
    parser.feed(page)
    assert {url.rsplit("/", 1)[-1] for url in parser.urls} == {"swagger-ui.css", "swagger-ui-bundle.js"}
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//"), url  # same origin: no CDN
        status, content_type, body = await fetch(gateway, "GET", url)
        assert status == 200 and content_type in ("text/css", "text/javascript", "application/javascript"), url
        assert "SwaggerUIBundle" in body or ".swagger-ui" in body


# Gateway answers ---------------------------------------------------------------


async def test_gateway_answers_are_documented(gateway: Gateway, client: Client, spec: dict[str, Any]) -> None:
    auth = {"headers": client.headers}
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    batch = {"batch": [client.event(timestamp=now), {**client.event(), "event_type": "no such type"}]}
    answer = await fetch(gateway, "POST", "/v1/batch", json=batch, **auth)
    assert answer[0] == 200 and answer[2]["totals"]["rejected"] == 1
    assert_documented(spec, "POST", "/v1/batch", answer)
    assert_documented(spec, "POST", "/v1/events", await fetch(gateway, "POST", "/v1/events", json=client.event(), **auth))
    domain = [{"eventType": "UserCreated", "userId": "u_doc"}, {"eventType": "Nope"}]
    answer = await fetch(gateway, "POST", "/v1/domain-events", json=domain, **auth)
    assert [result["status"] for result in answer[2]["results"]] == ["accepted", "rejected"]
    assert_documented(spec, "POST", "/v1/domain-events", answer)
    consent = {"categories": {"learning_progress": True}, "age_band": "13_to_17", "parental_consent": None}
    answer = await fetch(gateway, "PUT", "/v1/consent/u_doc", json=consent, **auth)
    assert answer[0] == 200
    assert_documented(spec, "PUT", "/v1/consent/{user_id}", answer)
    assert_documented(spec, "GET", "/v1/schemas", await fetch(gateway, "GET", "/v1/schemas"))
    answer = await fetch(gateway, "GET", "/v1/schemas/gameStageComplete")
    assert answer[0] == 200
    assert_documented(spec, "GET", "/v1/schemas/{event_type}", answer)
    answer = await fetch(gateway, "GET", "/health")
    assert answer[0] == 200
    assert_documented(spec, "GET", "/health", answer)
    answer = await fetch(gateway, "GET", "/metrics")
    assert answer[0] == 200 and "lms_events_intake_events_total" in answer[2]
    assert_documented(spec, "GET", "/metrics", answer)


async def test_gateway_errors_are_documented(gateway: Gateway, client: Client, spec: dict[str, Any]) -> None:
    answer = await fetch(gateway, "POST", "/v1/batch", json={"batch": [client.event()]})
    assert answer[0] == 401
    assert_documented(spec, "POST", "/v1/batch", answer)
    answer = await fetch(gateway, "POST", "/v1/batch", data=b"{", headers={**client.headers, "Content-Type": JSON})
    assert answer[0] == 400
    assert_documented(spec, "POST", "/v1/batch", answer)
    answer = await fetch(gateway, "PUT", "/v1/consent/u1", json={"age_band": "ancient"}, headers=client.headers)
    assert answer[0] == 400 and answer[2]["field"] == "age_band"
    assert_documented(spec, "PUT", "/v1/consent/{user_id}", answer)
    answer = await fetch(gateway, "GET", "/v1/schemas/no_such_type")
    assert answer[0] == 404
    assert_documented(spec, "GET", "/v1/schemas/{event_type}", answer)


# Analytics answers -------------------------------------------------------------

USER, COURSE, ASSESSMENT = "u_doc", "c_doc", "a_doc"


async def _stored(store: ClickHouseStore, organization_id: str) -> list[int]:
    """Rows the read models hold for the organization: learner, course, enrollment, attempt, event."""
    counts = []
    for table in ("learners", "courses", "enrollments", "assessment_attempts", "events"):
        rows = await store.query(f"SELECT count() AS n FROM {table} WHERE organization_id = {{org:String}}", {"org": organization_id})
        counts.append(int(rows[0]["n"]))
    return counts


@pytest_asyncio.fixture(scope="module")
async def reader(gateway: Gateway, store: ClickHouseStore, settings: Settings) -> dict[str, str]:
    """Read headers of a subscriber-admin of a small organization, once its data is queryable
    (asked before, the API would cache the empty answers)."""
    client = await gateway.client()
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    domain = [
        {"eventType": "UserCreated", "userId": USER, "departmentId": "d1"},
        {"eventType": "CourseCreated", "courseId": COURSE, "contents": [{"contentId": "G-01542", "moduleId": "m1"}]},
        {"eventType": "UserEnrolled", "userId": USER, "courseId": COURSE},
        {"eventType": "AssessmentCompleted", "userId": USER, "assessmentId": ASSESSMENT, "courseId": COURSE,
         "score": 80, "passed": True, "timeSpent": 300},
    ]
    status, answer = await client.post("/v1/domain-events", domain)
    assert status == 200 and answer["totals"]["rejected"] == 0, answer
    status, answer = await client.post_batch([client.event(user_id=USER, timestamp=now, event_id=str(uuid.uuid4()))])
    assert status == 200 and answer["totals"]["accepted"] == 1, answer
    await eventually(lambda: _stored(store, client.organization_id), lambda counts: all(counts), timeout=60)
    secret = tokens.signing_secret(settings)
    token = tokens.mint(secret, sub="admin", role=tokens.Role.SUBSCRIBER_ADMIN, organization_id=client.organization_id)
    return {"Authorization": f"Bearer {token}"}


READS = (
    ("/api/v1/dashboard", "/api/v1/dashboard", {"timeframe": "7d"}),
    ("/api/v1/users/{userId}/analytics", f"/api/v1/users/{USER}/analytics", {}),
    ("/api/v1/courses/{courseId}/analytics", f"/api/v1/courses/{COURSE}/analytics", {}),
    ("/api/v1/assessments/{assessmentId}/analytics", f"/api/v1/assessments/{ASSESSMENT}/analytics", {}),
    ("/api/v1/learning-progress", "/api/v1/learning-progress", {"limit": "1"}),
    ("/api/v1/events", "/api/v1/events", {"userId": USER}),
    ("/api/v1/audit", "/api/v1/audit", {"limit": "1", "action": "read.events"}),
    ("/api/v1/me/data-usage", "/api/v1/me/data-usage", {}),
)


@pytest.mark.parametrize(("template", "path", "params"), READS, ids=[template for template, _, _ in READS])
async def test_analytics_answers_are_documented(
    gateway: Gateway, spec: dict[str, Any], reader: dict[str, str], template: str, path: str, params: dict[str, str]
) -> None:
    if template == "/api/v1/audit":
        # Something to show: a read of events, here (the events case may run in another xdist
        # worker, with its own gateway). The trail is written in the background
        # (lms_events/audit.py) and shows it within its flush interval.
        status, _, _ = await fetch(gateway, "GET", "/api/v1/events", headers=reader, params={"userId": USER})
        assert status == 200
    answer = await eventually(
        lambda: fetch(gateway, "GET", path, headers=reader, params=params),
        lambda answer: answer[0] != 200 or answer[2].get("items") != [],
    )
    assert answer[0] == 200, answer
    assert_documented(spec, "GET", template, answer)
    items = answer[2].get("items")
    assert items is None or len(items) == 1  # a real row, not only the empty shape
    status, content_type, _ = await fetch(gateway, "GET", path, headers=reader, params={**params, "format": "csv"})
    assert status == 200 and content_type in spec["paths"][template]["get"]["responses"]["200"]["content"]


async def test_analytics_errors_are_documented(gateway: Gateway, spec: dict[str, Any], reader: dict[str, str]) -> None:
    answer = await fetch(gateway, "GET", "/api/v1/dashboard")
    assert answer[0] == 401
    assert_documented(spec, "GET", "/api/v1/dashboard", answer)
    answer = await fetch(gateway, "GET", "/api/v1/learning-progress", headers=reader, params={"status": "lost"})
    assert answer[0] == 400 and answer[2]["field"] == "status"
    assert_documented(spec, "GET", "/api/v1/learning-progress", answer)
    answer = await fetch(gateway, "GET", "/api/v1/dashboard", headers=reader, params={"organizationId": "someone_else"})
    assert answer[0] == 403
    assert_documented(spec, "GET", "/api/v1/dashboard", answer)
    answer = await fetch(gateway, "GET", "/api/v1/courses/nope/analytics", headers=reader)
    assert answer[0] == 404
    assert_documented(spec, "GET", "/api/v1/courses/{courseId}/analytics", answer)

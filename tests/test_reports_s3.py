"""Report files in S3-compatible storage: a local S3 server (moto's server
mode, started here), a report API and worker configured with its bucket on
the session's chDB, and a Redis database of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import boto3
import pytest
import pytest_asyncio
from aiohttp import web
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer
from redis.asyncio import Redis

from ingest.handlers import error_middleware
from lms_events.clickhouse import ClickHouseStore
from lms_events.settings import Settings
from reports.app import add_reports
from tests.support import Gateway, serve, unique_org
from tests.test_reports import JOBS, caller

BUCKET = "lms-reports"


@pytest.fixture
def s3_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


@pytest_asyncio.fixture
async def s3_api(store: ClickHouseStore, settings: Settings, redis_url: str, s3_url: str) -> AsyncIterator[Gateway]:
    url = redis_url.rsplit("/", 1)[0] + "/5"
    redis = Redis.from_url(url)
    await redis.flushdb()
    await redis.aclose()
    configured = settings.with_overrides(redis_url=url, reports_s3_bucket=BUCKET, reports_s3_endpoint_url=s3_url)
    app = web.Application(middlewares=[error_middleware])
    add_reports(app, configured, store=store)
    runner, base_url = await serve(app)
    async with aiohttp.ClientSession() as session:
        yield Gateway(base_url, session, app)
    await runner.cleanup()


async def test_report_files_are_stored_read_and_deleted_in_s3(s3_api: Gateway, settings: Settings, s3_url: str) -> None:
    admin = caller(s3_api, settings, "subscriber-admin", unique_org(), "admin")
    job = await admin.create({"reportType": "engagement-trend", "name": "Trend", "output": {"format": "csv"}})
    done = await admin.finished(job["id"])
    assert done["status"] == "completed", done
    location = done["output"]["storage"]
    assert location["provider"] == "s3" and location["bucket"] == BUCKET
    assert location["key"] == f"reports/{done['organizationId']}/{job['id']}.csv"
    assert location["url"] == f"s3://{BUCKET}/{location['key']}"

    status, headers, body = await admin.download(job["id"])
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert body.startswith(b"date,events,activeLearners,learningHours") and body.count(b"\n") == 31
    s3 = boto3.client("s3", endpoint_url=s3_url)
    assert s3.get_object(Bucket=BUCKET, Key=location["key"])["Body"].read() == body

    assert (await admin.call("DELETE", f"{JOBS}/{job['id']}"))[0] == 204
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=location["key"])

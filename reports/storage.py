"""Where report files live: a directory under the data dir, or an
S3-compatible bucket (LMS_EVENTS_REPORTS_S3_BUCKET).

    local   <data dir>/reports/<organization>/<job id>.<ext>
    s3      s3://<bucket>/reports/<organization>/<job id>.<ext>

A file is always written locally first, under a temporary name, and made
visible in one step when complete (a rename, or an upload of the finished
file), so a download or a crash never sees half a file under the real
name; a restarted job simply writes it again. A job's location names its
provider, so files stored before a switch of provider stay readable.

All methods are blocking (file and network I/O): callers run them in a thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lms_events.errors import StorageError
from lms_events.settings import Settings
from reports.models import Storage

LOCAL, S3 = "local", "s3"
READ_CHUNK = 256 * 1024


def _safe(organization_id: str) -> str:
    # organization ids are identifiers (<= 128 chars) but still come from clients: never a path
    return organization_id.replace("/", "_").replace("\\", "_").lstrip(".") or "_"


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def store(self, scratch: Path, relative: str) -> Storage:
        final = self.root / relative
        os.replace(scratch, final)
        return Storage(provider=LOCAL, path=relative)

    def _path(self, location: Storage) -> Path | None:
        if location.path is None:
            return None
        path = (self.root / location.path).resolve()
        return path if path.is_relative_to(self.root.resolve()) else None

    def size(self, location: Storage) -> int | None:
        path = self._path(location)
        return path.stat().st_size if path is not None and path.exists() else None

    def read(self, location: Storage) -> Iterator[bytes]:
        path = self._path(location)
        assert path is not None
        with path.open("rb") as file:
            while block := file.read(READ_CHUNK):
                yield block

    def delete(self, location: Storage) -> None:
        path = self._path(location)
        if path is not None:
            path.unlink(missing_ok=True)


class S3Storage:
    """boto3 with its usual credential chain (AWS_* environment, profile, instance role)."""

    def __init__(self, bucket: str, endpoint_url: str | None) -> None:
        import boto3

        self.bucket = bucket
        self._client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    def store(self, scratch: Path, relative: str) -> Storage:
        from botocore.exceptions import BotoCoreError, ClientError

        key = f"reports/{relative}"
        try:
            self._client.upload_file(str(scratch), self.bucket, key)  # multipart: memory bounded by a part
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot store the report in s3://{self.bucket}: {exc}") from exc
        scratch.unlink(missing_ok=True)
        return Storage(provider=S3, bucket=self.bucket, key=key, url=f"s3://{self.bucket}/{key}")

    def size(self, location: Storage) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return int(self._client.head_object(Bucket=location.bucket, Key=location.key)["ContentLength"])
        except ClientError:
            return None

    def read(self, location: Storage) -> Iterator[bytes]:
        body = self._client.get_object(Bucket=location.bucket, Key=location.key)["Body"]
        yield from body.iter_chunks(READ_CHUNK)

    def delete(self, location: Storage) -> None:
        self._client.delete_object(Bucket=location.bucket, Key=location.key)


class ReportFiles:
    """Scratch files on local disk; finished files to the configured provider; reads by the file's own."""

    def __init__(self, settings: Settings) -> None:
        self.local = LocalStorage(settings.reports_dir)
        self.s3 = S3Storage(settings.reports_s3_bucket, settings.reports_s3_endpoint_url) if settings.reports_s3_bucket else None

    def scratch(self, organization_id: str, job_id: str, extension: str) -> Path:
        folder = self.local.root / _safe(organization_id)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f".{job_id}.{extension}.partial"

    def commit(self, scratch: Path, organization_id: str, job_id: str, extension: str) -> Storage:
        relative = f"{_safe(organization_id)}/{job_id}.{extension}"
        return (self.s3 or self.local).store(scratch, relative)

    def discard(self, scratch: Path) -> None:
        scratch.unlink(missing_ok=True)

    def _provider(self, location: Storage) -> LocalStorage | S3Storage | None:
        if location.provider == S3:
            return self.s3
        return self.local if location.provider == LOCAL else None

    def size(self, location: Storage) -> int | None:
        provider = self._provider(location)
        return provider.size(location) if provider else None

    def read(self, location: Storage) -> Iterator[bytes]:
        provider = self._provider(location)
        assert provider is not None
        return provider.read(location)

    def delete(self, location: Storage) -> None:
        provider = self._provider(location)
        if provider is not None:
            provider.delete(location)

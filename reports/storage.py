"""Where report files live: a directory under the data dir, one folder per
organization (`<data dir>/reports/<organization>/<job id>.<ext>`).

A file is written under a temporary name and renamed when complete, so a
reader (download) or a crash never sees half a file under the real name;
a restarted job simply writes it again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from reports.models import Storage

PROVIDER = "local"
READ_CHUNK = 256 * 1024


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, organization_id: str) -> Path:
        # organization ids are identifiers (<= 128 chars) but still come from clients: never a path
        safe = organization_id.replace("/", "_").replace("\\", "_").lstrip(".") or "_"
        return self.root / safe

    def scratch(self, organization_id: str, job_id: str, extension: str) -> Path:
        folder = self._folder(organization_id)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f".{job_id}.{extension}.partial"

    def commit(self, scratch: Path, organization_id: str, job_id: str, extension: str) -> Storage:
        final = self._folder(organization_id) / f"{job_id}.{extension}"
        os.replace(scratch, final)
        return Storage(provider=PROVIDER, path=str(final.relative_to(self.root)))

    def discard(self, scratch: Path) -> None:
        scratch.unlink(missing_ok=True)

    def size(self, storage: Storage) -> int | None:
        path = self._path(storage)
        return path.stat().st_size if path is not None and path.exists() else None

    def read(self, storage: Storage) -> Iterator[bytes]:
        path = self._path(storage)
        assert path is not None
        with path.open("rb") as file:
            while block := file.read(READ_CHUNK):
                yield block

    def delete(self, storage: Storage) -> None:
        path = self._path(storage)
        if path is not None:
            path.unlink(missing_ok=True)

    def _path(self, storage: Storage) -> Path | None:
        if storage.provider != PROVIDER or storage.path is None:
            return None
        path = (self.root / storage.path).resolve()
        return path if path.is_relative_to(self.root.resolve()) else None

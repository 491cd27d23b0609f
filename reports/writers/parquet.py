"""Parquet through pyarrow: one row group per chunk, the schema of the first."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from reports.writers import Document


class ParquetFile:
    def __init__(self, path: Path, document: Document) -> None:
        self._path = path
        self._columns = document.columns
        self._writer: pq.ParquetWriter | None = None

    def write(self, chunk: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._path, chunk.schema, compression="zstd")
        self._writer.write_table(chunk)

    def close(self) -> None:
        if self._writer is None:  # no rows: still a valid file with the columns
            schema = pa.schema([pa.field(name, pa.string()) for name in self._columns])
            self._writer = pq.ParquetWriter(self._path, schema)
        self._writer.close()

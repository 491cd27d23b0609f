"""CSV and JSON: text formats written row by row from each chunk."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pyarrow as pa

from reports.writers import Document


class CsvWriter:
    def __init__(self, path: Path, document: Document) -> None:
        self._file = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(document.columns)

    def write(self, chunk: pa.Table) -> None:
        # None is an empty cell; everything else as Python writes it (rounded floats, ISO times).
        columns = [column.to_pylist() for column in chunk.columns]
        self._csv.writerows(zip(*columns, strict=True))

    def close(self) -> None:
        self._file.close()


class JsonWriter:
    """`[` + one row object a line + `]`: valid JSON, and greppable."""

    def __init__(self, path: Path, document: Document) -> None:
        self._file = path.open("wb")
        self._file.write(b"[")
        self._first = True

    def write(self, chunk: pa.Table) -> None:
        for row in chunk.to_pylist():
            self._file.write(b"\n" if self._first else b",\n")
            self._file.write(orjson.dumps(row))
            self._first = False

    def close(self) -> None:
        self._file.write(b"\n]\n")
        self._file.close()

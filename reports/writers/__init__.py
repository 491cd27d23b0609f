"""File writers, one per output format: each takes the report's rows as
Arrow chunks and writes them to a file as they come, so memory is bounded
by a chunk whatever the report's size (a PDF is bounded by its row cap).

    csv      text.CsvWriter       header row, RFC 4180 quoting
    json     text.JsonWriter      a JSON array of row objects, one per line
    xlsx     xlsx.XlsxWriter      one sheet, xlsxwriter's constant-memory mode
    parquet  parquet.ParquetFile  one row group per chunk, typed columns
    pdf      pdf.PdfWriter        title, parameters, summary, chart, table, page numbers

Writers are synchronous (file I/O and encoding): the worker calls them
in a thread, off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa


@dataclass(frozen=True)
class Document:
    """What a writer may show besides the rows (the PDF shows all of it)."""

    title: str
    report_type: str
    generated_at: str
    parameters: dict[str, str]
    columns: tuple[str, ...]
    summary: dict[str, object]
    chart: list[tuple[str, float]]
    chart_label: str
    total_rows: int


class Writer(Protocol):
    def write(self, chunk: pa.Table) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Format:
    content_type: str
    extension: str


FORMATS = {
    "csv": Format("text/csv; charset=utf-8", "csv"),
    "json": Format("application/json", "json"),
    "xlsx": Format("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "parquet": Format("application/vnd.apache.parquet", "parquet"),
    "pdf": Format("application/pdf", "pdf"),
}


def open_writer(output_format: str, path: Path, document: Document) -> Writer:
    # Imported here: a worker writing CSV never loads fpdf2 or xlsxwriter.
    if output_format == "csv":
        from reports.writers.text import CsvWriter

        return CsvWriter(path, document)
    if output_format == "json":
        from reports.writers.text import JsonWriter

        return JsonWriter(path, document)
    if output_format == "xlsx":
        from reports.writers.xlsx import XlsxWriter

        return XlsxWriter(path, document)
    if output_format == "parquet":
        from reports.writers.parquet import ParquetFile

        return ParquetFile(path, document)
    if output_format == "pdf":
        from reports.writers.pdf import PdfWriter

        return PdfWriter(path, document)
    raise ValueError(f"no writer for {output_format!r}")

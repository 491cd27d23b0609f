"""XLSX through xlsxwriter in constant-memory mode: each row is flushed to
the sheet's file when the next begins, so memory does not grow with rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import xlsxwriter

from reports.writers import Document

# Excel's own limit; a report longer than this is cut there, with a note in the last row.
MAX_SHEET_ROWS = 1_048_576


class XlsxWriter:
    def __init__(self, path: Path, document: Document) -> None:
        self._book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        self._sheet = self._book.add_worksheet(document.report_type[:31])
        bold = self._book.add_format({"bold": True})
        self._sheet.write_row(0, 0, document.columns, bold)
        self._row = 1

    def write(self, chunk: pa.Table) -> None:
        columns = [column.to_pylist() for column in chunk.columns]
        for values in zip(*columns, strict=True):
            if self._row >= MAX_SHEET_ROWS - 1:
                return
            # None stays a blank cell (write_row would write nothing there either)
            for col, value in enumerate(values):
                if value is not None:
                    self._sheet.write(self._row, col, value)
            self._row += 1

    def close(self) -> None:
        self._book.close()

"""PDF: a document a person reads (fpdf2). Page one has the title, the
parameters, the summary figures and a bar chart; then the table, its
header repeated on every page, and "page n of m" in every footer.

fpdf2 keeps the document in memory until it is saved, so the table holds
at most MAX_TABLE_ROWS rows (a note says how many more the CSV or XLSX of
the same job would hold); the summary and chart cover every row. Text is
set in the PDF core font Helvetica (no font file to ship); characters
outside Latin-1 print as '?'.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from fpdf import FPDF

from reports.writers import Document

MAX_TABLE_ROWS = 2_000
_MARGIN = 12
_ROW_H = 6
_BAR_H = 5
_ACCENT = (41, 98, 163)
_STRIPE = (240, 244, 250)


# Typography a title typed on a phone or Mac carries, in the core font's terms.
_PLAIN = str.maketrans({"\u2014": "-", "\u2013": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2026": "..."})


def _latin(value: object) -> str:
    text = "" if value is None else str(value)
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def _figure(value: object) -> str:
    return f"{value:,}" if isinstance(value, int | float) and not isinstance(value, bool) else _latin(value)


class _Pdf(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(110)
        self.cell(0, 6, f"Page {self.page_no()} of {{nb}}", align="C")


class PdfWriter:
    def __init__(self, path: Path, document: Document) -> None:
        self._path = path
        self._doc = document
        orientation = "landscape" if len(document.columns) > 5 else "portrait"
        self._pdf = _Pdf(orientation=orientation, format="A4")
        self._pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self._pdf.set_auto_page_break(auto=True, margin=16)
        self._pdf.set_title(_latin(document.title))
        self._pdf.add_page()
        self._widths = [self._pdf.epw / max(len(document.columns), 1)] * len(document.columns)
        self._rows = 0
        self._front_page()
        self._header()

    def _front_page(self) -> None:
        pdf, doc = self._pdf, self._doc
        pdf.set_font("Helvetica", "B", 18)
        pdf.set_text_color(*_ACCENT)
        pdf.cell(0, 10, _latin(doc.title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)
        pdf.set_text_color(90)
        pdf.cell(0, 5, _latin(f"{doc.report_type} report, generated {doc.generated_at}"), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        self._heading("Parameters")
        pdf.set_font("Helvetica", size=9)
        for name, value in doc.parameters.items():
            pdf.cell(45, 5, _latin(name))
            pdf.multi_cell(0, 5, _latin(value), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        self._heading("Summary")
        box = pdf.epw / max(len(doc.summary), 1)
        y = pdf.get_y()
        for n, (label, value) in enumerate(doc.summary.items()):
            pdf.set_xy(_MARGIN + n * box, y)
            pdf.set_font("Helvetica", "B", 16)
            pdf.set_text_color(*_ACCENT)
            pdf.cell(box, 8, _figure(value), align="C")
            pdf.set_xy(_MARGIN + n * box, y + 8)
            pdf.set_font("Helvetica", size=8)
            pdf.set_text_color(90)
            pdf.cell(box, 5, _latin(label), align="C")
        pdf.set_y(y + 16)
        if doc.chart:
            self._chart()

    def _heading(self, text: str) -> None:
        self._pdf.set_font("Helvetica", "B", 11)
        self._pdf.set_text_color(30)
        self._pdf.cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")

    def _chart(self) -> None:
        """Horizontal bars: the top rows by the report's chart figure."""
        pdf, doc = self._pdf, self._doc
        self._heading(_latin(doc.chart_label))
        label_w = 45
        top = max((value for _, value in doc.chart), default=0) or 1
        bar_w = pdf.epw - label_w - 20
        pdf.set_font("Helvetica", size=8)
        for label, value in doc.chart:
            y = pdf.get_y()
            pdf.set_text_color(40)
            pdf.cell(label_w, _BAR_H, _latin(label)[:28])
            pdf.set_fill_color(*_ACCENT)
            pdf.rect(_MARGIN + label_w, y + 0.8, max(bar_w * value / top, 0.3), _BAR_H - 1.6, style="F")
            pdf.set_xy(_MARGIN + label_w + bar_w + 2, y)
            shown = int(value) if value.is_integer() else round(value, 2)
            pdf.cell(18, _BAR_H, _figure(shown), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)

    def _header(self) -> None:
        pdf = self._pdf
        pdf.set_font("Helvetica", "B", 8)
        pdf.set_fill_color(*_ACCENT)
        pdf.set_text_color(255)
        for width, name in zip(self._widths, self._doc.columns, strict=True):
            pdf.cell(width, _ROW_H, _latin(name), fill=True)
        pdf.ln(_ROW_H)
        pdf.set_font("Helvetica", size=8)
        pdf.set_text_color(30)

    def write(self, chunk: pa.Table) -> None:
        pdf = self._pdf
        for row in zip(*(column.to_pylist() for column in chunk.columns), strict=True):
            if self._rows >= MAX_TABLE_ROWS:
                return
            if pdf.will_page_break(_ROW_H):
                pdf.add_page()
                self._header()
            pdf.set_fill_color(*_STRIPE)
            for width, value in zip(self._widths, row, strict=True):
                pdf.cell(width, _ROW_H, _latin(value)[: int(width / 1.6)], fill=self._rows % 2 == 1)
            pdf.ln(_ROW_H)
            self._rows += 1

    def close(self) -> None:
        if self._doc.total_rows > self._rows:
            self._pdf.ln(2)
            self._pdf.set_font("Helvetica", "I", 8)
            more = self._doc.total_rows - self._rows
            self._pdf.cell(0, 5, f"{more} more rows are in the CSV, XLSX, JSON or Parquet output of this report.")
        self._pdf.output(str(self._path))

"""The report metadata API's answers (reports/metadata.py), as msgspec Structs
the handlers encode through and the OpenAPI document is derived from."""

from __future__ import annotations

from analytics.models import Model


class ParameterInfo(Model):
    name: str
    type: str
    description: str
    required: bool


class ReportTypeMetadata(Model):
    id: str
    description: str
    generated: bool
    columns: list[str]
    parameters: list[ParameterInfo]
    measures: list[str]
    dimensions: list[str]


class ReportTypeMetadataList(Model):
    items: list[ReportTypeMetadata]


class OutputFormatInfo(Model):
    id: str
    description: str
    content_type: str
    extension: str


class OutputFormatList(Model):
    items: list[OutputFormatInfo]


class LookupValue(Model):
    value: str
    description: str


class LookupCategory(Model):
    category: str
    items: list[LookupValue]


class EventTypeInfo(Model):
    id: str
    category: str
    group: str


class EventTypeList(Model):
    items: list[EventTypeInfo]


class FilterOption(Model):
    id: str


class FilterOptionPage(Model):
    kind: str
    items: list[FilterOption]
    next_cursor: str | None


ANSWERS = (ReportTypeMetadataList, OutputFormatList, LookupCategory, EventTypeList, FilterOptionPage)

"""The lms-events error tree.

    LmsEventsError
    ├── ConfigError            a setting is missing or invalid (names the variable)
    ├── EmbeddedStartError     an embedded component (broker, valkey) did not start
    ├── BrokerUnavailable      Kafka did not take a publish in time -> HTTP 503
    ├── StorageError           ClickHouse refused a query or insert
    │   └── MigrationError     a numbered migration failed (names the file)
    └── ClientError            what a client sent is unacceptable -> HTTP 4xx
        ├── BadRequest         unparseable or malformed request -> 400
        ├── Unauthorized       missing, unknown or revoked write key or token -> 401
        ├── Forbidden          a valid token whose role may not do this -> 403
        ├── NotFound           unknown resource (event type schema) -> 404
        ├── Conflict           the resource's state forbids this (a report job's transition) -> 409
        ├── Gone               the resource existed and has expired (a report file) -> 410
        ├── PayloadTooLarge    a size limit was exceeded -> 413
        ├── LimitExceeded      an analyst query hit an engine limit (time, rows, memory) -> 422
        └── RateLimited        the write key's token bucket, or an organization's query slots, are used up -> 429

Third-party errors (aiokafka, chdb, clickhouse-connect, redis) are
translated into these at the module that talks to that component.
"""

from __future__ import annotations

from typing import Annotated

import msgspec


class LmsEventsError(Exception):
    """Base of every error lms-events raises on purpose."""


class ConfigError(LmsEventsError):
    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class EmbeddedStartError(LmsEventsError):
    pass


class BrokerUnavailable(LmsEventsError):
    pass


class StorageError(LmsEventsError):
    pass


class MigrationError(StorageError):
    pass


class ErrorAnswer(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """The body of every 4xx and 503 answer (gateway and analytics API alike);
    the OpenAPI document's `Error` schema is derived from it."""

    error: str
    field: Annotated[
        str | None,
        msgspec.Meta(description="the parameter, header or body field at fault; absent when the request as a whole is"),
    ] = None


class ClientError(LmsEventsError):
    status = 400

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field

    def as_json(self) -> dict[str, object]:
        return msgspec.to_builtins(ErrorAnswer(self.reason, self.field))  # type: ignore[no-any-return]


class BadRequest(ClientError):
    status = 400


class Unauthorized(ClientError):
    status = 401


class Forbidden(ClientError):
    status = 403


class NotFound(ClientError):
    status = 404


class Conflict(ClientError):
    status = 409


class Gone(ClientError):
    status = 410


class PayloadTooLarge(ClientError):
    status = 413


class LimitExceeded(ClientError):
    """`field` names the limit (e.g. `max_execution_time`), so a client can tell which one."""

    status = 422


class RateLimited(ClientError):
    status = 429

    def __init__(self, reason: str, *, retry_after_s: int, field: str | None = None) -> None:
        super().__init__(reason, field=field)
        self.retry_after_s = retry_after_s

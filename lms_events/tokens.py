"""Read tokens: who is asking, in which organization, with which role.

Read requests (the analytics API, later reports and analyst SQL) carry
`Authorization: Bearer <JWT>`, HS256-signed with LMS_EVENTS_JWT_SECRET.
Claims: `sub` (user id), `org` (organization; a system-admin's token may
have none), `role` (ROLES, most to least powerful), `departments` (for a
teacher-admin), `exp` (required). Write keys never read, and a token
never writes events: the two credentials are different kinds of string.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from lms_events.errors import Unauthorized
from lms_events.secret_files import load_or_create_secret
from lms_events.settings import Settings

ALGORITHM = "HS256"
SECRET_FILE = "jwt_secret"
DEFAULT_LIFETIME_S = 24 * 3600


class Role(StrEnum):
    SYSTEM_ADMIN = "system-admin"
    SUBSCRIBER_ADMIN = "subscriber-admin"
    TEACHER_ADMIN = "teacher-admin"
    TEACHER = "teacher"
    STUDENT = "student"


ROLES = tuple(Role)
# Roles that see every user of an organization (no user population to apply).
ORGANIZATION_WIDE = frozenset({Role.SYSTEM_ADMIN, Role.SUBSCRIBER_ADMIN})


@dataclass(frozen=True)
class Principal:
    """The verified caller of a read request."""

    sub: str
    role: Role
    organization_id: str | None
    departments: tuple[str, ...] = ()


def signing_secret(settings: Settings) -> bytes:
    """LMS_EVENTS_JWT_SECRET, else the one generated into the data dir (one machine's `up`)."""
    return load_or_create_secret(settings.jwt_secret, settings.data_dir, SECRET_FILE)


BEARER = "Bearer "


def bearer_token(request: Any) -> str:
    """The token of an `Authorization: Bearer <JWT>` header (any object with `.headers`)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith(BEARER):
        raise Unauthorized("send a read token: Authorization: Bearer <JWT>")
    return header[len(BEARER) :].strip()


def mint(
    secret: bytes,
    *,
    sub: str,
    role: Role | str,
    organization_id: str | None,
    departments: tuple[str, ...] | list[str] = (),
    lifetime_s: int = DEFAULT_LIFETIME_S,
) -> str:
    role = Role(role)
    if organization_id is None and role is not Role.SYSTEM_ADMIN:
        raise ValueError(f"a {role} token needs an organization")
    claims: dict[str, object] = {"sub": sub, "role": str(role), "exp": int(time.time()) + lifetime_s}
    if organization_id is not None:
        claims["org"] = organization_id
    if departments:
        claims["departments"] = list(departments)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: bytes, token: str) -> Principal:
    """The principal of a valid token, or Unauthorized saying what is wrong with it."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "role"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    try:
        role = Role(claims["role"])
    except ValueError:
        raise Unauthorized(f"invalid token: role must be one of {', '.join(ROLES)}", field="role") from None
    organization_id = claims.get("org")
    departments = claims.get("departments") or []
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise Unauthorized("invalid token: sub must be a non-empty string", field="sub")
    if organization_id is not None and not isinstance(organization_id, str):
        raise Unauthorized("invalid token: org must be a string", field="org")
    if organization_id is None and role is not Role.SYSTEM_ADMIN:
        raise Unauthorized(f"invalid token: a {role} token needs an org claim", field="org")
    if not isinstance(departments, list) or not all(isinstance(d, str) for d in departments):
        raise Unauthorized("invalid token: departments must be a list of strings", field="departments")
    return Principal(claims["sub"], role, organization_id, tuple(departments))

"""Who the caller may see, as SQL applied inside each query.

A `Scope` is one organization (or every organization, for a
system-admin) and, for the narrower roles, a population of users written
as a subquery over the read models (METRICS.md, "Who sees what"; README,
"Who is counted"):

    system-admin       every organization, or the one `?organizationId=` names
    subscriber-admin   everyone of their organization
    teacher-admin      users whose latest department is one of theirs
    teacher            users enrolled with a class they teach, and themselves
    student            themselves

Every reader asks `scope.users()` for the condition on
(organization_id, user_id) and `scope.organizations()` for the
condition on organization_id, and binds `scope.params`. Results are never
filtered after the query: what is out of scope is never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from lms_events.errors import BadRequest, Forbidden
from lms_events.tokens import ORGANIZATION_WIDE, Principal, Role

# Bound by ClickHouse; names prefixed so a reader's own parameters never collide.
_PARAM_ORG = "scope_org"
_PARAM_SUB = "scope_sub"
_PARAM_DEPARTMENTS = "scope_departments"

_ORG = f"{{{_PARAM_ORG}:String}}"
_SUB = f"{{{_PARAM_SUB}:String}}"
_DEPARTMENTS = f"{{{_PARAM_DEPARTMENTS}:String}}"
# For readers whose own rows name a user or department (report jobs): the caller's
# id and departments (a JSON array) as bound by every scope.
CALLER = _SUB
CALLER_DEPARTMENTS = f"JSONExtract({_DEPARTMENTS}, 'Array(String)')"

# Users whose latest department is one of the caller's.
_DEPARTMENT_USERS = f"""
    SELECT organization_id, user_id FROM learners WHERE organization_id = {_ORG}
    GROUP BY organization_id, user_id
    HAVING has({CALLER_DEPARTMENTS}, argMaxMerge(department_id))"""

# Users enrolled with a class whose latest teacher list holds the caller, and the caller.
_CLASS_USERS = f"""
    SELECT organization_id, user_id FROM enrollments WHERE organization_id = {_ORG} AND class_id IN (
        SELECT class_id FROM classes WHERE organization_id = {_ORG}
        GROUP BY class_id HAVING has(argMaxMerge(teacher_ids), {_SUB}))
    UNION ALL SELECT {_ORG}, {_SUB}"""


@dataclass(frozen=True)
class Scope:
    role: Role
    organization_id: str | None
    sub: str = ""
    departments: tuple[str, ...] = ()
    params: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, principal: Principal, requested_organization: str | None = None) -> Scope:
        """The scope of a request; a non-system-admin naming another organization is Forbidden."""
        organization_id = principal.organization_id
        if requested_organization:
            if principal.role is Role.SYSTEM_ADMIN:
                organization_id = requested_organization
            elif requested_organization != principal.organization_id:
                raise Forbidden("your token is for another organization", field="organizationId")
        params = {_PARAM_SUB: principal.sub, _PARAM_DEPARTMENTS: orjson.dumps(list(principal.departments)).decode()}
        if organization_id is not None:
            params[_PARAM_ORG] = organization_id
        return cls(principal.role, organization_id, principal.sub, principal.departments, params)

    @property
    def organization_wide(self) -> bool:
        return self.role in ORGANIZATION_WIDE

    def organizations(self, column: str = "organization_id") -> str:
        return "1" if self.organization_id is None else f"{column} = {_ORG}"

    def users(self, org_column: str = "organization_id", user_column: str = "user_id") -> str:
        """The condition that (org_column, user_column) is a user of the scope."""
        organizations = self.organizations(org_column)
        if self.role in ORGANIZATION_WIDE:
            return organizations
        if self.role is Role.STUDENT:
            return f"{organizations} AND {user_column} = {_SUB}"
        population = _DEPARTMENT_USERS if self.role is Role.TEACHER_ADMIN else _CLASS_USERS
        return f"{organizations} AND ({org_column}, {user_column}) IN ({population})"

    def require_organization(self) -> str:
        """The single organization of the scope; a system-admin must name one for per-entity figures."""
        if self.organization_id is None:
            raise BadRequest("a system-admin names the organization: ?organizationId=", field="organizationId")
        return self.organization_id

"""Who may see and who may manage a report job, as SQL on `report_jobs`
rows (readers) and as a check on one job (managers). Templates and
schedules (their owner in `owner_id`) follow the same rules.

    visibility     who reads it (besides its requester)
    private        nobody else
    department     subscriber- and system-admins of the organization, and
                   teachers and teacher-admins whose token lists the job's departmentId
    organization   every staff member of the organization (not students)

A student reads only their own jobs, whatever their visibility. Cancel,
retry and delete are for the requester and the organization's
administrators. A report's rows were computed with its requester's scope:
sharing a job shares what the requester could see, which is the point of
the setting.
"""

from __future__ import annotations

from analytics.scope import CALLER, CALLER_DEPARTMENTS, Scope
from lms_events.errors import Forbidden
from lms_events.tokens import ORGANIZATION_WIDE, Role


def readable(scope: Scope, owner: str = "requested_by") -> str:
    """The condition that a report_jobs row (or a row whose `owner` column names its owner) is
    readable by the caller (within scope.organizations())."""
    own = f"{owner} = {CALLER}"
    if scope.role is Role.STUDENT:
        return own
    if scope.role in ORGANIZATION_WIDE:
        return f"(visibility != 'private' OR {own})"
    department = f"(visibility = 'department' AND has({CALLER_DEPARTMENTS}, ifNull(department_id, '')))"
    return f"({own} OR visibility = 'organization' OR {department})"


def require_manager(scope: Scope, requested_by: str, what: str = "job") -> None:
    if requested_by != scope.sub and scope.role not in ORGANIZATION_WIDE:
        raise Forbidden(f"only the {'requester' if what == 'job' else 'owner'} or an administrator may change this {what}")

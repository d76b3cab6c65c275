"""Routes: list, show and cancel an organization's jobs."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy.orm import Session

from gakwaya.auth.principal import OrgContext, Principal, set_audit_target
from gakwaya.jobs import services
from gakwaya.jobs.schemas import JobDetail, JobSummary
from gakwaya.kernel import Kernel
from gakwaya.pagination import DEFAULT_LIMIT, LimitQuery, Page

JOBS = "/api/v1/orgs/{org:str}/jobs"


@get(
    JOBS,
    operation_id="jobs_list",
    tags=["jobs"],
    sync_to_thread=True,
    opt={"permission": "jobs.read"},
)
def jobs_list(
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
    job_state: Annotated[
        str | None,
        QueryParameter(name="state", description="queued, running, succeeded, failed or cancelled"),
    ] = None,
    job_type: Annotated[str | None, QueryParameter(name="type", description="a job type")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: FromQuery[str | None] = None,
) -> Page[JobSummary]:
    """The organization's jobs, newest first; filter by state and type."""
    return services.list_jobs(
        db, current_org.id, state=job_state, job_type=job_type, limit=limit, cursor=cursor
    )


@get(
    f"{JOBS}/{{job_id:str}}",
    operation_id="jobs_show",
    tags=["jobs"],
    sync_to_thread=True,
    opt={"permission": "jobs.read"},
)
def jobs_show(
    db: NamedDependency[Session],
    current_org: NamedDependency[OrgContext],
    job_id: FromPath[str],
) -> JobDetail:
    """A job with its arguments, progress, result, error and newest log lines."""
    return services.show_job(db, current_org.id, job_id)


@post(
    f"{JOBS}/{{job_id:str}}/cancel",
    operation_id="jobs_cancel",
    tags=["jobs"],
    sync_to_thread=True,
    status_code=200,
    opt={"permission": "jobs.cancel"},
)
def jobs_cancel(
    request: Request[Any, Any, Any],
    kernel: NamedDependency[Kernel],
    current_org: NamedDependency[OrgContext],
    principal: NamedDependency[Principal],
    job_id: FromPath[str],
) -> JobDetail:
    """Cancel a job. A queued job ends ``cancelled`` at once; a running job gets
    ``cancel_requested`` and stops at its next check (poll it to see it end). A job
    that already ended is a 409."""
    set_audit_target(request, "job", job_id)
    services.check_job_id(job_id)
    kernel.jobs.cancel(job_id, org_id=current_org.id, by=principal.label)
    with kernel.db.session() as db:
        return services.show_job(db, current_org.id, job_id)


ROUTES = [jobs_list, jobs_show, jobs_cancel]

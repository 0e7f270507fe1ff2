"""Jobs: long-running work (ingestion, index rebuilds) that the API starts and reports on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.store.models import JOB_STATUSES, Job
from reid.errors import ReidTraceError

__all__ = ["create_job", "get_job", "list_jobs", "update_job"]


def create_job(*, session: Session, kind: str, params: dict[str, Any] | None = None) -> Job:
    job = Job(kind=kind, status="pending", params=params or {}, progress={})
    session.add(job)
    session.commit()
    return job


def get_job(*, session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise ReidTraceError(f"no job with id {job_id}", hint="list the jobs", status=404)
    return job


def update_job(
    *,
    session: Session,
    job_id: int,
    status: str | None = None,
    progress: dict[str, Any] | None = None,
    error: str | None = None,
) -> Job:
    """Set what is given (``progress`` replaces the whole dict); commits."""
    if status is not None and status not in JOB_STATUSES:
        raise ValueError(f"job status {status!r} is not one of {JOB_STATUSES}")
    job = get_job(session=session, job_id=job_id)
    if status is not None:
        job.status = status
    if progress is not None:
        job.progress = dict(progress)
    if error is not None:
        job.error = error
    session.commit()
    return job


def list_jobs(
    *, session: Session, status: str | None = None, kind: str | None = None, limit: int = 100
) -> list[Job]:
    stmt = select(Job)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    return list(session.scalars(stmt.order_by(Job.id.desc()).limit(limit)))

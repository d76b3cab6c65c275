"""The job domain's events, published after the job's final state is committed."""

from __future__ import annotations

from gakwaya_sdk.events import Event


class JobSucceededEvent(Event, tag="job.succeeded"):
    job_id: str
    job_type: str


class JobFailedEvent(Event, tag="job.failed"):
    job_id: str
    job_type: str
    #: The exception's type and message (secrets scrubbed), or why the worker lost it.
    error: str


class JobCancelledEvent(Event, tag="job.cancelled"):
    job_id: str
    job_type: str


EVENT_TYPES: list[type[Event]] = [JobSucceededEvent, JobFailedEvent, JobCancelledEvent]

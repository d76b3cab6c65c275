"""Job types for the job-queue tests, loaded through the ``plugin_modules`` setting so a
``gakwaya worker`` subprocess loads the very same module (GAKWAYA_PLUGIN_MODULES)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gakwaya_sdk import hookimpl
from gakwaya_sdk.jobs import JobCancelled, JobContext, JobType

#: How many times each job id entered a counting job, in this process.
RUNS: Counter[str] = Counter()


def echo(ctx: JobContext, **arguments: Any) -> dict[str, Any]:
    ctx.log("hello")
    ctx.progress(50)
    ctx.log("half way")
    return {"echo": arguments, "attempt": ctx.attempt}


def fail(ctx: JobContext, message: str = "boom") -> None:
    ctx.log("about to fail")
    raise RuntimeError(message)


def hold(ctx: JobContext, release: str = "", seconds: float = 120) -> str:
    """Run until the file ``release`` exists (or a cancel); never silently forever."""
    ctx.log(f"holding (attempt {ctx.attempt})")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if release and Path(release).exists():
            ctx.log("released")
            return "released"
        ctx.sleep(0.05)
    raise RuntimeError("hold: never released")


def hold_first(ctx: JobContext, release: str = "") -> dict[str, int]:
    """Holds on its first attempt only: a retry after a lost worker completes."""
    if ctx.attempt == 1:
        hold(ctx, release)
    ctx.log(f"completing on attempt {ctx.attempt}")
    return {"attempt": ctx.attempt}


def wait_for_cancel(ctx: JobContext) -> None:
    """Blocks on its own event, not ctx.sleep: only an on_cancel callback frees it."""
    fired = threading.Event()
    ctx.on_cancel(fired.set)
    ctx.log("waiting for a cancel")
    if not fired.wait(120):
        raise RuntimeError("on_cancel never fired")
    ctx.log("on_cancel fired")
    raise JobCancelled()


def bad_result(ctx: JobContext) -> object:
    return object()


def leak(ctx: JobContext, url: str) -> None:
    ctx.log(f"connecting to {url}")
    raise ConnectionError(f"cannot reach {url}")


def count(ctx: JobContext) -> int:
    RUNS[ctx.job_id] += 1
    time.sleep(0.2)  # keep the first run inside its claim while the second one tries
    return RUNS[ctx.job_id]


JOB_TYPES = [
    JobType(name="test.echo", func=echo, retry_safe=True, max_attempts=3),
    JobType(name="test.fail", func=fail),
    JobType(name="test.hold", func=hold),
    JobType(name="test.hold_first", func=hold_first, retry_safe=True, max_attempts=2),
    JobType(name="test.on_cancel", func=wait_for_cancel),
    JobType(name="test.bad_result", func=bad_result),
    JobType(name="test.leak", func=leak),
    JobType(name="test.count", func=count),
    JobType(name="test.slow", func=hold, timeout=1),
]


@hookimpl
def register_jobs() -> Sequence[JobType]:
    return JOB_TYPES

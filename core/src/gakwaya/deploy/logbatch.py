"""A deployment's log, written to its job's log a batch at a time.

A build prints a line per step and more; written one transaction each (the job's
``log``), those lines cost a deployment measurable time on a small machine, where the
database shares the cores with the engine. A :class:`LogBatch` keeps each line with
the time it was produced (so the log's times stay those of the events) and writes
what it holds in one transaction:

- at most ``FLUSH_SECONDS`` after the first line it holds (a timer), so a follower
  (the SSE stream polls every 0.5 s, ``--wait``) still sees lines promptly, and
  a step that goes quiet for minutes has shown everything it printed;
- at once when it holds ``FLUSH_LINES`` lines;
- when told (:meth:`LogBatch.flush`, :meth:`LogBatch.settle`): the pipeline writes
  what is held before a deployment's state changes (a follower stops reading at its
  end) and before its clean-up and failure lines, which it writes directly.

A worker killed mid-deployment loses at most the lines of the last ``FLUSH_SECONDS``.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from types import TracebackType

from gakwaya.db.base import utcnow
from gakwaya.jobs.context import RunningJob
from gakwaya_sdk.jobs import JobContext

log = logging.getLogger("gakwaya.deploy")

#: Longest a line waits for its batch to be written.
FLUSH_SECONDS = 0.1
#: Lines held before they are written without waiting.
FLUSH_LINES = 100


class LogBatch:
    """A ``log`` callback (``LogFn``) for a deployment's lines and its providers'."""

    def __init__(
        self, ctx: JobContext, *, delay: float = FLUSH_SECONDS, max_lines: int = FLUSH_LINES
    ) -> None:
        self._ctx = ctx
        self._delay = delay
        self._max_lines = max(1, max_lines)
        self._pending: list[tuple[datetime, str]] = []
        self._lock = threading.Lock()
        #: Held while a batch is written, so batches reach the log in order.
        self._writing = threading.Lock()
        self._timer: threading.Timer | None = None
        self._closed = False

    def __call__(self, line: str) -> None:
        if not isinstance(self._ctx, RunningJob):
            self._ctx.log(line)  # another JobContext: no batching to offer
            return
        with self._lock:
            self._pending.append((utcnow(), line))
            full = len(self._pending) >= self._max_lines
            if not full and self._timer is None and not self._closed:
                self._timer = threading.Timer(self._delay, self._on_timer)
                self._timer.daemon = True
                self._timer.start()
        if full or self._closed:
            self.flush()

    def flush(self) -> None:
        """Write every line held now, in one transaction."""
        with self._writing:
            with self._lock:
                batch, self._pending = self._pending, []
                timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()
            if batch:
                assert isinstance(self._ctx, RunningJob)
                self._ctx.log_lines(batch)

    def close(self) -> None:
        """Write what is held; lines after this are written at once."""
        with self._lock:
            self._closed = True
        self.flush()

    def settle(self) -> None:
        """:meth:`close` on a path that must go on (a failure being reported, the end
        of a deployment): a database that refuses the lines is logged, not raised."""
        try:
            self.close()
        except Exception:
            log.exception("writing held deployment log lines failed")

    def _on_timer(self) -> None:
        try:
            self.flush()
        except Exception:
            # The step goes on; its end writes what is still held (or raises then).
            log.exception("writing a batch of deployment log lines failed")

    def __enter__(self) -> LogBatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # After a failure, the failure is what must go on being reported.
        if exc_type is None:
            self.close()
        else:
            self.settle()

"""Container output as text lines: one instance's, or several merged.

The engine sends output in frames that split or join lines arbitrarily; lines are
reassembled here. Several instances without ``follow`` are merged by the engine's
timestamps (oldest first); with ``follow``, each instance's stream is read by its own
thread and lines are yielded as they arrive (each instance's in order). Closing the
generator closes every stream, which ends the threads.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class LineSplitter:
    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += chunk
        *complete, self._buffer = self._buffer.split(b"\n")
        return [_decode(line) for line in complete]

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, b""
        return [_decode(rest)] if rest else []


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r")


def lines(chunks: Iterable[bytes]) -> Iterator[str]:
    splitter = LineSplitter()
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.flush()


def split_timestamp(line: str) -> tuple[str, str]:
    """(sortable key, text) of a line the engine prefixed with its RFC 3339 time.

    The engine trims trailing zeros of the nanoseconds, so the fraction is padded to
    nine digits before strings are compared."""
    stamp, _, text = line.partition(" ")
    head, _, rest = stamp.partition(".")
    fraction = rest.rstrip("Z")
    return f"{head}.{fraction.ljust(9, '0')}", text


def merge_by_time(sources: Iterable[tuple[str, list[str]]]) -> list[str]:
    """Lines of several instances (each with timestamps), oldest first, each with the
    instance's prefix (the prefix may be empty)."""
    keyed: list[tuple[str, int, str]] = []
    for order, (prefix, raw_lines) in enumerate(sources):
        for line in raw_lines:
            key, text = split_timestamp(line)
            keyed.append((key, order, prefix + text))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [text for _, _, text in keyed]


_DONE = object()


def follow(streams: list[tuple[str, Any]], on_close: Callable[[], None]) -> Iterator[str]:
    """Yield lines of every ``(prefix, stream)`` as they come until all streams end or
    the caller closes the generator; ``on_close`` then runs (closing the client)."""
    out: queue.Queue[object] = queue.Queue(maxsize=10_000)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read(prefix: str, stream: Any) -> None:
        try:
            # A closed or broken stream simply ends this reader.
            with contextlib.suppress(Exception):
                for line in lines(stream):
                    if not put(prefix + line):
                        return
        finally:
            put(_DONE)

    threads = [
        threading.Thread(target=read, args=(prefix, stream), daemon=True, name="gakwaya-logs")
        for prefix, stream in streams
    ]
    for thread in threads:
        thread.start()
    try:
        remaining = len(threads)
        while remaining:
            item = out.get()
            if item is _DONE:
                remaining -= 1
                continue
            yield str(item)
    finally:
        stop.set()
        for _, stream in streams:
            with contextlib.suppress(Exception):  # already closed by the engine
                stream.close()
        for thread in threads:
            thread.join(timeout=2)
        on_close()

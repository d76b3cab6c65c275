"""A plugin module for the peer process: appends each event it receives to a file.

The file is named by ``EVENTS_TEST_OUT``; one JSON object per line.
"""

from __future__ import annotations

import json
import os

import msgspec

from gakwaya_sdk import hookimpl
from gakwaya_sdk.events import Event


@hookimpl
def on_event(event: Event, event_id: int) -> None:
    path = os.environ["EVENTS_TEST_OUT"]
    line = json.dumps({"id": event_id, "event": msgspec.to_builtins(event)})
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")

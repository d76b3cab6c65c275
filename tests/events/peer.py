"""Another panel process for the cross-process tests.

Run as ``python -m tests.events.peer`` with the GAKWAYA_* settings of the test (the
database, GAKWAYA_REDIS_URL, GAKWAYA_PLUGIN_MODULES naming the sample types and the
file recorder) plus:

- ``EVENTS_TEST_OUT``: where the file recorder writes what this process receives;
- ``EVENTS_TEST_READY``: written once the relay is subscribed;
- ``EVENTS_TEST_STOP``: the process exits when this file appears (or after 120 s).

It answers a ``test.ping`` with ``reply=True`` by publishing a ``test.pong``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from gakwaya.kernel import Kernel
from gakwaya.settings import load_settings
from gakwaya_sdk import hookimpl
from gakwaya_sdk.events import Event


class Replier:
    def __init__(self) -> None:
        self.kernel: Kernel | None = None

    @hookimpl
    def on_event(self, event: Event) -> None:
        from tests.events.sample import Ping, Pong

        if isinstance(event, Ping) and event.reply and self.kernel is not None:
            self.kernel.events.publish(Pong(org_id=event.org_id, note=event.note))


def main() -> int:
    replier = Replier()
    kernel = Kernel.create(load_settings(), extra_plugins=[("test.replier", replier)])
    replier.kernel = kernel
    kernel.start_background()
    relay = kernel.events.relay
    if relay is None or not relay.subscribed.wait(30):
        print("relay did not subscribe", file=sys.stderr)
        return 1
    Path(os.environ["EVENTS_TEST_READY"]).write_text(kernel.process_id)
    stop = Path(os.environ["EVENTS_TEST_STOP"])
    deadline = time.monotonic() + 120
    while not stop.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    kernel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gakwaya.kernel import Kernel
from gakwaya.settings import Settings
from tests.events import sample
from tests.events.sample import Exploder, Recorder


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def kernel(settings: Settings, recorder: Recorder) -> Iterator[Kernel]:
    """The panel with the sample event types, a recorder and a failing subscriber."""
    k = Kernel.create(
        settings,
        extra_plugins=[
            ("test.sample", sample),
            ("test.recorder", recorder),
            ("test.exploder", Exploder()),
        ],
    )
    yield k
    k.close()

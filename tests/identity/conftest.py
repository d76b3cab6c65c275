import pytest
from litestar import Litestar

from gakwaya.app import create_app
from gakwaya.kernel import Kernel


@pytest.fixture
def app(kernel: Kernel) -> Litestar:
    # No job runner or event relay: identity needs neither.
    return create_app(kernel, background=False)

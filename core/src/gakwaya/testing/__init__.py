"""Test support for plugin authors: a pytest plugin and the people it creates.

The pytest plugin (:mod:`gakwaya.testing.pytest_plugin`) is registered under
pytest's ``pytest11`` entry point, so installing ``gakwaya`` next to pytest is
enough to get the ``gakwaya_*`` fixtures. This package only holds what a test may
want to name in its annotations; it imports nothing of the kernel until a fixture
runs, so pytest starts as fast with it as without it.
"""

from gakwaya.testing.people import PASSWORD, ROLES, SCOPES, GakwayaOrg, GakwayaUser

__all__ = ["PASSWORD", "ROLES", "SCOPES", "GakwayaOrg", "GakwayaUser"]

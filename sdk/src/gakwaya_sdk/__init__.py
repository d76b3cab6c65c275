"""The contract between the Gakwaya kernel and its plugins.

A plugin imports only this package. It marks hook implementations with
:data:`hookimpl` and receives the types it needs from the submodules:

- :mod:`gakwaya_sdk.hookspecs`: every hook the kernel calls, documented;
- :mod:`gakwaya_sdk.permissions`: roles, API-key scopes and permission entries;
- :mod:`gakwaya_sdk.events`: the base class of typed domain events;
- :mod:`gakwaya_sdk.jobs`: job type declarations and the context a job runs with;
- :mod:`gakwaya_sdk.types`: validated names shared by the API and plugins;
- :mod:`gakwaya_sdk.manifest`: the plugin manifest and :data:`CORE_API_VERSION`;
- :mod:`gakwaya_sdk.ui`: pages, navigation entries, actions and cards for the web
  dashboard.
"""

from gakwaya_sdk.manifest import CORE_API_VERSION
from gakwaya_sdk.markers import PROJECT_NAME, hookimpl, hookspec

__all__ = ["CORE_API_VERSION", "PROJECT_NAME", "hookimpl", "hookspec"]
__version__ = "0.1.0"

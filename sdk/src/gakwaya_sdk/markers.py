"""pluggy markers for the ``gakwaya`` project."""

import pluggy

PROJECT_NAME = "gakwaya"

#: Decorates the declarations in :mod:`gakwaya_sdk.hookspecs`.
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Decorates a plugin's implementation of a hook.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

"""Every refusal the marketplace library raises, one class per reason.

All derive from :class:`MarketplaceError`, so a caller that only needs "it failed,
here is why" catches that; a caller that reacts differently (an unknown key is a
configuration problem, a bad signature is an attack or corruption) catches the
specific class.
"""

from __future__ import annotations


class MarketplaceError(Exception):
    """Base class of every marketplace refusal; ``str(exc)`` is the reason."""


# --- building an index -------------------------------------------------------------


class WheelRefused(MarketplaceError):
    """A file given to the builder cannot be published (not a wheel, inconsistent
    metadata, missing or invalid plugin manifest, conflicting re-publication)."""


# --- signed documents --------------------------------------------------------------


class SignatureError(MarketplaceError):
    """Base class of the verification failures."""


class MalformedDocument(SignatureError):
    """The signed document (or the index inside it) does not have the expected shape."""


class UnknownKey(SignatureError):
    """No signature in the document was made by a trusted key."""


class BadSignature(SignatureError):
    """A signature by a trusted key does not match the index bytes."""


# --- choosing a release -------------------------------------------------------------


class SelectionError(MarketplaceError):
    """Base class of the reasons :func:`~gakwaya_marketplace.pick_release` refuses."""


class PluginNotFound(SelectionError):
    """The index does not list the plugin."""


class NoInstallableRelease(SelectionError):
    """The plugin is listed but every release is yanked, blocked or incompatible;
    ``reasons`` maps each version to why it was skipped."""

    def __init__(self, message: str, reasons: dict[str, str]) -> None:
        super().__init__(message)
        self.reasons = reasons


class SourceOnlyRelease(SelectionError):
    """The release's URL is not a wheel: installing it would run its build code."""


# --- downloading ----------------------------------------------------------------------


class IntegrityError(MarketplaceError):
    """A downloaded wheel's size or sha256 differs from the index entry."""


class WheelMismatch(MarketplaceError):
    """The wheel is intact but is not the plugin release the index entry describes
    (another distribution, another version or another manifest)."""

"""Gakwaya's plugin marketplace library: the signed index format, the builder that
turns wheels into an index, the ed25519 signer/verifier, the blocklist and the
choice of the release to install.

It imports only the standard library, third-party packages and ``gakwaya_sdk``, never
the kernel: the kernel's plugin host (and an offline publishing machine) use it alike.
"""

from gakwaya_marketplace.blocklist import BlockEntry, is_blocked, load_blocklist
from gakwaya_marketplace.builder import WheelInfo, build_index, read_wheel
from gakwaya_marketplace.errors import (
    BadSignature,
    IntegrityError,
    MalformedDocument,
    MarketplaceError,
    NoInstallableRelease,
    PluginNotFound,
    SelectionError,
    SignatureError,
    SourceOnlyRelease,
    UnknownKey,
    WheelMismatch,
    WheelRefused,
)
from gakwaya_marketplace.index import (
    FORMAT_VERSION,
    Index,
    Plugin,
    Release,
    decode_index,
    encode_index,
)
from gakwaya_marketplace.selection import (
    check_wheel,
    check_wheel_matches,
    pick_release,
    skip_reason,
    wheel_filename,
)
from gakwaya_marketplace.signing import (
    Signature,
    SignedIndex,
    add_signature,
    generate_key,
    sign,
    signed_document,
    verify,
)
from gakwaya_sdk.manifest import MANIFEST_FILE

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "BadSignature",
    "BlockEntry",
    "Index",
    "IntegrityError",
    "MalformedDocument",
    "MarketplaceError",
    "NoInstallableRelease",
    "Plugin",
    "PluginNotFound",
    "Release",
    "SelectionError",
    "Signature",
    "SignatureError",
    "SignedIndex",
    "SourceOnlyRelease",
    "UnknownKey",
    "WheelInfo",
    "WheelMismatch",
    "WheelRefused",
    "add_signature",
    "build_index",
    "check_wheel",
    "check_wheel_matches",
    "decode_index",
    "encode_index",
    "generate_key",
    "is_blocked",
    "load_blocklist",
    "pick_release",
    "read_wheel",
    "sign",
    "signed_document",
    "skip_reason",
    "verify",
    "wheel_filename",
]

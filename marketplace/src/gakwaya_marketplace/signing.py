"""ed25519 signing of an index, and verification against trusted keys.

A signed index file is::

    {"index": "<the index JSON document, as a string>",
     "signatures": [{"key_id": "...", "algorithm": "ed25519", "signature": "<base64>"}]}

Each signature is over the exact UTF-8 bytes of the embedded ``index`` string. The
verifier takes that string from the outer document, encodes it to UTF-8 and checks the
signatures over those bytes; only then does it parse them as an index. Nothing is ever
re-serialised before verification, so no canonicalisation ambiguity can make a
signature cover something other than what is read.

A key id is the first 16 hex digits of the sha256 of the raw 32-byte public key.
Public keys travel as standard base64 of those 32 bytes; private keys as PKCS#8 PEM.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gakwaya_marketplace.errors import BadSignature, MalformedDocument, UnknownKey
from gakwaya_marketplace.index import Index, decode_index

ALGORITHM = "ed25519"


class Signature(msgspec.Struct, kw_only=True):
    key_id: str
    algorithm: str
    #: Standard base64 of the 64-byte ed25519 signature.
    signature: str


class SignedIndex(msgspec.Struct, kw_only=True):
    index: str
    signatures: list[Signature]


def _raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(public)).hexdigest()[:16]


def generate_key() -> tuple[bytes, str, str]:
    """A new key pair: ``(private_pem, public_key_b64, key_id)``."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = private.public_key()
    return pem, base64.b64encode(_raw_public(public)).decode("ascii"), key_id_of(public)


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise MalformedDocument(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise MalformedDocument("the private key is not an ed25519 key")
    return key


def load_public_key(public_b64: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(public_b64, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise MalformedDocument("a public key is not base64 of 32 raw ed25519 bytes") from exc


def public_key_b64(private: Ed25519PrivateKey) -> str:
    return base64.b64encode(_raw_public(private.public_key())).decode("ascii")


def sign(index_bytes: bytes, private_key: Ed25519PrivateKey | bytes) -> Signature:
    """Sign the exact ``index_bytes``; ``private_key`` is a key or its PEM bytes."""
    key = load_private_key(private_key) if isinstance(private_key, bytes) else private_key
    return Signature(
        key_id=key_id_of(key.public_key()),
        algorithm=ALGORITHM,
        signature=base64.b64encode(key.sign(index_bytes)).decode("ascii"),
    )


def signed_document(index_bytes: bytes, signatures: list[Signature]) -> bytes:
    """The signed index file embedding ``index_bytes`` (which must be UTF-8)."""
    try:
        text = index_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedDocument("the index is not UTF-8") from exc
    return msgspec.json.encode(SignedIndex(index=text, signatures=signatures)) + b"\n"


def parse_signed(document: bytes) -> SignedIndex:
    """The outer document, unverified; :class:`MalformedDocument` on a bad shape."""
    try:
        return msgspec.json.decode(document, type=SignedIndex)
    except msgspec.ValidationError as exc:
        raise MalformedDocument(f"signed document does not match the format: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise MalformedDocument(f"signed document is not valid JSON: {exc}") from exc


def add_signature(document: bytes, private_key: Ed25519PrivateKey | bytes) -> bytes:
    """Another signature over the same embedded index bytes (co-signing)."""
    signed = parse_signed(document)
    index_bytes = signed.index.encode("utf-8")
    new = sign(index_bytes, private_key)
    others = [s for s in signed.signatures if s.key_id != new.key_id]
    return signed_document(index_bytes, [*others, new])


def verify(signed_document_bytes: bytes, trusted_keys: dict[str, str]) -> Index:
    """Check a signed index file and return the index it carries.

    ``trusted_keys`` maps key ids to base64 public keys. At least one signature must be
    by a trusted key, and every signature by a trusted key must be valid (a failing one
    means tampering or corruption, never "try the next"). Signatures by other keys are
    ignored. Raises :class:`MalformedDocument` (shape, encoding, unsupported
    algorithm, trusted key id not matching its key), :class:`UnknownKey` (no signature
    by a trusted key) or :class:`BadSignature`.
    """
    signed = parse_signed(signed_document_bytes)
    index_bytes = signed.index.encode("utf-8")
    publics: dict[str, Ed25519PublicKey] = {}
    for key_id, public_b64 in trusted_keys.items():
        public = load_public_key(public_b64)
        if key_id_of(public) != key_id:
            raise MalformedDocument(f"trusted key id {key_id!r} does not match its public key")
        publics[key_id] = public

    if not signed.signatures:
        raise UnknownKey("the document carries no signature")
    checked = 0
    for entry in signed.signatures:
        trusted = publics.get(entry.key_id)
        if trusted is None:
            continue
        if entry.algorithm != ALGORITHM:
            raise MalformedDocument(
                f"signature by {entry.key_id} uses unsupported algorithm {entry.algorithm!r}"
            )
        try:
            raw = base64.b64decode(entry.signature, validate=True)
        except binascii.Error as exc:
            raise MalformedDocument(f"signature by {entry.key_id} is not base64") from exc
        try:
            trusted.verify(raw, index_bytes)
        except InvalidSignature as exc:
            raise BadSignature(
                f"the signature by key {entry.key_id} does not match the index"
            ) from exc
        checked += 1
    if not checked:
        found = ", ".join(sorted({s.key_id for s in signed.signatures}))
        raise UnknownKey(f"no signature by a trusted key (signed by: {found})")
    return decode_index(index_bytes)

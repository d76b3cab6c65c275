"""``python -m gakwaya_marketplace``: keygen, build, sign, verify.

Exit status: 0 success, 1 a refusal (wheel refused, malformed input), 2 usage error
(argparse), 3 bad signature, 4 no signature by a trusted key.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from gakwaya_marketplace.builder import build_index
from gakwaya_marketplace.errors import BadSignature, MarketplaceError, UnknownKey
from gakwaya_marketplace.index import decode_index, encode_index
from gakwaya_marketplace.signing import (
    add_signature,
    generate_key,
    sign,
    signed_document,
    verify,
)

EXIT_REFUSED = 1
EXIT_BAD_SIGNATURE = 3
EXIT_UNKNOWN_KEY = 4


def _write_new(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path``; a private file is created 0600 and never overwritten."""
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def cmd_keygen(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists():
        print(f"error: {out} exists; refusing to overwrite a key", file=sys.stderr)
        return EXIT_REFUSED
    pem, public_b64, key_id = generate_key()
    _write_new(out, pem, private=True)
    print(f"private key written to {out}")
    print(f"key id:     {key_id}")
    print(f"public key: {public_b64}")
    print(f"trust with: --trusted-key {key_id}={public_b64}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    directory: Path = args.wheels
    if not directory.is_dir():
        print(f"error: {directory} is not a directory", file=sys.stderr)
        return EXIT_REFUSED
    wheels = sorted(directory.glob("*.whl"))
    for other in sorted(directory.glob("*.tar.gz")) + sorted(directory.glob("*.zip")):
        print(f"ignored {other.name}: only wheels are published", file=sys.stderr)
    if not wheels:
        print(f"error: no .whl file in {directory}", file=sys.stderr)
        return EXIT_REFUSED
    existing = decode_index(args.existing.read_bytes()) if args.existing else None
    index = build_index(wheels, args.base_url, existing)
    args.out.write_bytes(encode_index(index))
    releases = sum(len(p.versions) for p in index.plugins.values())
    print(f"wrote {args.out}: {len(index.plugins)} plugin(s), {releases} release(s)")
    return 0


def _is_signed(data: bytes) -> bool:
    try:
        top = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return False
    return isinstance(top, dict) and "signatures" in top


def cmd_sign(args: argparse.Namespace) -> int:
    pem = args.key.read_bytes()
    data = args.index.read_bytes()
    if _is_signed(data):
        document = add_signature(data, pem)
    else:
        decode_index(data)  # refuse to sign something that is not an index
        document = signed_document(data, [sign(data, pem)])
    args.out.write_bytes(document)
    print(f"wrote {args.out}")
    return 0


def _trusted(values: Sequence[str]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for value in values:
        key_id, sep, public = value.partition("=")
        if not sep or not key_id or not public:
            raise argparse.ArgumentTypeError(f"--trusted-key {value!r}: expected ID=PUBLIC_KEY")
        keys[key_id] = public
    return keys


def cmd_verify(args: argparse.Namespace) -> int:
    index = verify(args.document.read_bytes(), _trusted(args.trusted_key))
    releases = sum(len(p.versions) for p in index.plugins.values())
    print(
        f"OK: {args.document} is signed by a trusted key; "
        f"{len(index.plugins)} plugin(s), {releases} release(s), "
        f"generated {index.generated_at.isoformat()}"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gakwaya_marketplace",
        description="Build, sign and verify Gakwaya's plugin index.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    keygen = sub.add_parser("keygen", help="create an ed25519 signing key")
    keygen.add_argument("--out", type=Path, default=Path("index-key.pem"), help="private key file")
    keygen.set_defaults(func=cmd_keygen)

    build = sub.add_parser("build", help="build an index from a directory of wheels")
    build.add_argument("--wheels", type=Path, required=True, help="directory holding .whl files")
    build.add_argument("--base-url", required=True, help="URL the wheels are served under")
    build.add_argument("--out", type=Path, required=True, help="index JSON to write")
    build.add_argument("--existing", type=Path, help="previous (unsigned) index to extend")
    build.set_defaults(func=cmd_build)

    sign_ = sub.add_parser("sign", help="sign an index (or co-sign a signed index)")
    sign_.add_argument("--key", type=Path, required=True, help="PEM private key")
    sign_.add_argument("index", type=Path, help="index JSON or signed index")
    sign_.add_argument("--out", type=Path, required=True, help="signed index to write")
    sign_.set_defaults(func=cmd_sign)

    verify_ = sub.add_parser("verify", help="verify a signed index")
    verify_.add_argument(
        "--trusted-key",
        action="append",
        required=True,
        metavar="ID=PUB",
        help="trusted key id and base64 public key (repeatable)",
    )
    verify_.add_argument("document", type=Path, help="signed index")
    verify_.set_defaults(func=cmd_verify)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        return int(args.func(args))
    except argparse.ArgumentTypeError as exc:
        p.error(str(exc))
    except BadSignature as exc:
        print(f"bad signature: {exc}", file=sys.stderr)
        return EXIT_BAD_SIGNATURE
    except UnknownKey as exc:
        print(f"unknown key: {exc}", file=sys.stderr)
        return EXIT_UNKNOWN_KEY
    except MarketplaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED

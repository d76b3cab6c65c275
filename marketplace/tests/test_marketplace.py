"""The marketplace library end to end, on real wheels built by ``uv build``.

One throwaway plugin project is built at three versions (plus a source distribution
and a wheel without a manifest) once per session; every test works on copies.
No conftest.py and no ``__init__.py`` here: the root ``tests`` package owns those names.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from gakwaya_marketplace import (
    MANIFEST_FILE,
    BadSignature,
    BlockEntry,
    Index,
    IntegrityError,
    MalformedDocument,
    NoInstallableRelease,
    PluginNotFound,
    SelectionError,
    SourceOnlyRelease,
    UnknownKey,
    WheelMismatch,
    WheelRefused,
    add_signature,
    build_index,
    check_wheel,
    check_wheel_matches,
    decode_index,
    encode_index,
    generate_key,
    is_blocked,
    load_blocklist,
    pick_release,
    read_wheel,
    sign,
    signed_document,
    verify,
    wheel_filename,
)
from gakwaya_marketplace.cli import EXIT_BAD_SIGNATURE, EXIT_UNKNOWN_KEY, main

BASE_URL = "https://plugins.example.org/wheels/"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

#: version → core_api of the demo plugin's releases.
RELEASES = {"1.0.0": ">=1,<2", "1.1.0": ">=1,<2", "2.0.0": ">=2,<3"}


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.skip("uv is needed to build the test wheels")
    return found


def _project(root: Path, *, version: str, core_api: str | None, manifest: bool = True) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        f"""\
[project]
name = "gakwaya-demo"
version = "{version}"
description = "A demo plugin"
requires-python = ">=3.11"

[project.urls]
Homepage = "https://example.org/demo"

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/gakwaya_demo"]
"""
    )
    package = root / "src" / "gakwaya_demo"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    if manifest:
        (package / MANIFEST_FILE).write_text(
            f'name = "gakwaya-demo"\nversion = "{version}"\ncore_api = "{core_api}"\n'
            'provides = ["demo:thing"]\n'
        )
    return root


def _build(uv: str, project: Path, out: Path, *kinds: str) -> None:
    """``uv build``, from uv's cache when hatchling is there (fast, no network),
    else fetching it from the registry."""
    command = [uv, "build", *kinds, "--out-dir", str(out), "--quiet", str(project)]
    offline = subprocess.run([*command, "--offline"], capture_output=True, timeout=240, check=False)
    if offline.returncode != 0:
        subprocess.run(command, check=True, capture_output=True, timeout=240)


@dataclass(frozen=True)
class Built:
    wheels: dict[str, Path]  # version → wheel
    sdist: Path
    no_manifest: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    uv = _uv()
    root = tmp_path_factory.mktemp("marketplace-wheels")
    out = root / "dist"
    wheels: dict[str, Path] = {}
    for version, core_api in RELEASES.items():
        project = _project(root / f"demo-{version}", version=version, core_api=core_api)
        kinds = ["--wheel", "--sdist"] if version == "1.0.0" else ["--wheel"]
        _build(uv, project, out, *kinds)
        wheels[version] = out / f"gakwaya_demo-{version}-py3-none-any.whl"
    bare = _project(root / "bare", version="3.0.0", core_api=None, manifest=False)
    bare_out = root / "bare-dist"
    _build(uv, bare, bare_out, "--wheel")
    built = Built(
        wheels=wheels,
        sdist=out / "gakwaya_demo-1.0.0.tar.gz",
        no_manifest=bare_out / "gakwaya_demo-3.0.0-py3-none-any.whl",
    )
    for path in [*wheels.values(), built.sdist, built.no_manifest]:
        assert path.is_file(), path
    return built


@pytest.fixture(scope="session")
def index(built: Built) -> Index:
    return build_index(list(built.wheels.values()), BASE_URL, None, now=NOW)


@pytest.fixture(scope="session")
def key() -> tuple[bytes, str, str]:
    return generate_key()


def _signed(index: Index, key: tuple[bytes, str, str]) -> bytes:
    data = encode_index(index)
    return signed_document(data, [sign(data, key[0])])


# --- builder ------------------------------------------------------------------------


def test_build_index_reads_the_wheels(built: Built, index: Index) -> None:
    assert list(index.plugins) == ["gakwaya-demo"]
    plugin = index.plugins["gakwaya-demo"]
    assert plugin.summary == "A demo plugin"
    assert plugin.homepage == "https://example.org/demo"
    assert [r.version for r in plugin.versions] == ["2.0.0", "1.1.0", "1.0.0"]
    for release in plugin.versions:
        wheel = built.wheels[release.version]
        data = wheel.read_bytes()
        assert release.sha256 == hashlib.sha256(data).hexdigest()
        assert release.size == len(data)
        assert release.wheel_url == BASE_URL + wheel.name
        assert release.core_api == RELEASES[release.version]
        assert release.manifest == {
            "name": "gakwaya-demo",
            "version": release.version,
            "core_api": RELEASES[release.version],
            "provides": ["demo:thing"],
        }
        assert release.published_at == NOW
        assert release.yanked is False
    assert index.generated_at == NOW


def test_encoding_is_canonical(index: Index) -> None:
    data = encode_index(index)
    assert encode_index(decode_index(data)) == data
    as_json = json.loads(data)
    assert data == json.dumps(as_json, sort_keys=True, separators=(",", ":")).encode()
    assert as_json["format_version"] == 1


def test_sdist_refused(built: Built) -> None:
    with pytest.raises(WheelRefused, match="only wheels"):
        read_wheel(built.sdist)
    with pytest.raises(WheelRefused, match="only wheels"):
        build_index([built.wheels["1.0.0"], built.sdist], BASE_URL, None)


def test_filename_name_mismatch_refused(built: Built, tmp_path: Path) -> None:
    renamed = tmp_path / "gakwaya_other-1.0.0-py3-none-any.whl"
    shutil.copy(built.wheels["1.0.0"], renamed)
    with pytest.raises(WheelRefused, match="filename says 'gakwaya-other'"):
        read_wheel(renamed)


def test_filename_version_mismatch_refused(built: Built, tmp_path: Path) -> None:
    renamed = tmp_path / "gakwaya_demo-9.0.0-py3-none-any.whl"
    shutil.copy(built.wheels["1.0.0"], renamed)
    with pytest.raises(WheelRefused, match=r"version 9\.0\.0 but METADATA says 1\.0\.0"):
        read_wheel(renamed)


def test_wheel_without_manifest_refused(built: Built) -> None:
    with pytest.raises(WheelRefused, match=f"no plugin manifest.*<package>/{MANIFEST_FILE}"):
        read_wheel(built.no_manifest)


def _with_manifest(wheel: Path, dest: Path, manifest: str) -> Path:
    """A copy of ``wheel`` whose plugin manifest is ``manifest``."""
    copy = dest / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(copy, "w") as out:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("/" + MANIFEST_FILE):
                data = manifest.encode()
            out.writestr(item, data)
    return copy


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ('name = "gakwaya-demo"\nversion = "1.0.0"\n', "core_api"),
        ('name = "gakwaya-demo"\nversion = "1.0.0"\ncore_api = "not a spec"\n', "core_api"),
        ('name = "gakwaya-demo"\nversion = "1.0.1"\ncore_api = ">=0.1"\n', "manifest says version"),
        (
            'name = "gakwaya-demo"\nversion = "1.0.0"\ncore_api = ">=0.1"\nprovides = ["x"]\n',
            "provides",
        ),
        (
            'name = "gakwaya-demo"\nversion = "1.0.0"\ncore_api = ">=0.1"\nwhen = 2020-01-01\n',
            "date",
        ),
        ("name = [", "not valid TOML"),
        # The scaffold's old layout: plugin "demo" in distribution gakwaya-demo.
        ('name = "demo"\nversion = "1.0.0"\ncore_api = ">=0.1"\n', "plugin 'demo' but the"),
        ('name = "gakwaya-other"\nversion = "1.0.0"\ncore_api = ">=0.1"\n', "must be its dist"),
    ],
)
def test_invalid_manifest_refused(
    built: Built, tmp_path: Path, manifest: str, message: str
) -> None:
    wheel = _with_manifest(built.wheels["1.0.0"], tmp_path, manifest)
    with pytest.raises(WheelRefused, match=message):
        read_wheel(wheel)
    # The same rewrite with a valid manifest is accepted: the refusal is the manifest's.
    (tmp_path / "good").mkdir()
    valid = 'name = "gakwaya-demo"\nversion = "1.0"\ncore_api = ">=0.1"\n'
    good = _with_manifest(built.wheels["1.0.0"], tmp_path / "good", valid)
    assert read_wheel(good).manifest == {
        "name": "gakwaya-demo",
        "version": "1.0",
        "core_api": ">=0.1",
    }


def test_manifest_name_is_the_distribution_name(built: Built, tmp_path: Path) -> None:
    wheel = _with_manifest(
        built.wheels["1.0.0"], tmp_path, 'name = "demo"\nversion = "1.0.0"\ncore_api = ">=1"\n'
    )
    message = (
        "the manifest names the plugin 'demo' but the distribution is 'gakwaya-demo': "
        "a plugin's name must be its distribution's name (compared PEP 503-normalised)"
    )
    with pytest.raises(WheelRefused) as caught:
        read_wheel(wheel)
    assert str(caught.value) == f"{wheel.name}: {message}"
    with pytest.raises(WheelRefused, match="the manifest names the plugin 'demo'"):
        build_index([built.wheels["1.1.0"], wheel], BASE_URL, None)
    # Another spelling of the same name (PEP 503) is the same name.
    (tmp_path / "spelled").mkdir()
    spelled = 'name = "Gakwaya_Demo"\nversion = "1.0.0"\ncore_api = ">=1"\n'
    info = read_wheel(_with_manifest(built.wheels["1.0.0"], tmp_path / "spelled", spelled))
    assert (info.name, info.manifest["name"]) == ("gakwaya-demo", "Gakwaya_Demo")


def test_existing_index_is_extended_and_versions_are_immutable(
    built: Built, tmp_path: Path
) -> None:
    first = build_index([built.wheels["1.0.0"]], BASE_URL, None, now=NOW)
    later = datetime(2026, 2, 1, tzinfo=UTC)
    second = build_index([built.wheels["1.0.0"], built.wheels["1.1.0"]], BASE_URL, first, now=later)
    versions = {r.version: r for r in second.plugins["gakwaya-demo"].versions}
    assert set(versions) == {"1.0.0", "1.1.0"}
    assert versions["1.0.0"].published_at == NOW  # kept, not re-published
    assert versions["1.1.0"].published_at == later

    # The same filename with other content: a published version cannot change.
    altered = tmp_path / built.wheels["1.0.0"].name
    shutil.copy(built.wheels["1.0.0"], altered)
    with zipfile.ZipFile(altered, "a") as archive:
        archive.writestr("gakwaya_demo/extra.py", "X = 1\n")
    with pytest.raises(WheelRefused, match="already published with a different sha256"):
        build_index([altered], BASE_URL, second)


# --- signing ------------------------------------------------------------------------


def test_sign_and_verify_round_trip(index: Index, key: tuple[bytes, str, str]) -> None:
    _pem, public, key_id = key
    document = _signed(index, key)
    verified = verify(document, {key_id: public})
    assert encode_index(verified) == encode_index(index)
    outer = json.loads(document)
    assert isinstance(outer["index"], str)
    assert outer["signatures"][0]["algorithm"] == "ed25519"
    assert outer["signatures"][0]["key_id"] == key_id
    assert len(base64.b64decode(outer["signatures"][0]["signature"])) == 64


def test_one_tampered_byte_is_a_bad_signature(index: Index, key: tuple[bytes, str, str]) -> None:
    _pem, public, key_id = key
    document = _signed(index, key)
    position = document.index(b"1.1.0") + 4  # inside the embedded index: 1.1.0 -> 1.1.1
    tampered = document[:position] + b"1" + document[position + 1 :]
    assert tampered != document
    assert json.loads(tampered)  # still a well-formed document
    with pytest.raises(BadSignature):
        verify(tampered, {key_id: public})


def test_tampered_signature_is_a_bad_signature(index: Index, key: tuple[bytes, str, str]) -> None:
    pem, public, key_id = key
    data = encode_index(index)
    good = sign(data, pem)
    raw = bytearray(base64.b64decode(good.signature))
    raw[0] ^= 1
    forged = msgspec.structs.replace(good, signature=base64.b64encode(bytes(raw)).decode())
    with pytest.raises(BadSignature):
        verify(signed_document(data, [forged]), {key_id: public})


def test_unknown_key(index: Index, key: tuple[bytes, str, str]) -> None:
    _pem, other_public, other_id = generate_key()
    with pytest.raises(UnknownKey, match=key[2]):
        verify(_signed(index, key), {other_id: other_public})
    with pytest.raises(UnknownKey):
        verify(signed_document(encode_index(index), []), {key[2]: key[1]})


def test_a_key_id_must_match_its_key(index: Index, key: tuple[bytes, str, str]) -> None:
    _pem, other_public, _other_id = generate_key()
    # Claiming the signer's id with another public key cannot make a forgery pass.
    with pytest.raises(MalformedDocument, match="does not match its public key"):
        verify(_signed(index, key), {key[2]: other_public})


@pytest.mark.parametrize(
    "document",
    [
        b"not json",
        b"[]",
        b'{"index": "{}"}',
        b'{"index": 1, "signatures": []}',
        b'{"signatures": []}',
    ],
)
def test_malformed_document(document: bytes, key: tuple[bytes, str, str]) -> None:
    with pytest.raises(MalformedDocument):
        verify(document, {key[2]: key[1]})


def test_signed_garbage_is_malformed_after_verification(key: tuple[bytes, str, str]) -> None:
    data = b'{"plugins": 3}'
    with pytest.raises(MalformedDocument, match="index does not match"):
        verify(signed_document(data, [sign(data, key[0])]), {key[2]: key[1]})


def test_unsupported_algorithm_is_malformed(index: Index, key: tuple[bytes, str, str]) -> None:
    data = encode_index(index)
    entry = msgspec.structs.replace(sign(data, key[0]), algorithm="rsa")
    with pytest.raises(MalformedDocument, match="unsupported algorithm"):
        verify(signed_document(data, [entry]), {key[2]: key[1]})


def test_verification_is_over_the_exact_embedded_bytes(
    index: Index, key: tuple[bytes, str, str]
) -> None:
    # A pretty-printed, non-canonical index verifies as is: nothing is re-serialised.
    pretty = json.dumps(json.loads(encode_index(index)), indent=2).encode()
    verified = verify(signed_document(pretty, [sign(pretty, key[0])]), {key[2]: key[1]})
    assert encode_index(verified) == encode_index(index)
    # ...and a signature over the canonical bytes does not cover the pretty ones.
    canonical_sig = sign(encode_index(index), key[0])
    with pytest.raises(BadSignature):
        verify(signed_document(pretty, [canonical_sig]), {key[2]: key[1]})


def test_co_signing(index: Index, key: tuple[bytes, str, str]) -> None:
    second = generate_key()
    document = add_signature(_signed(index, key), second[0])
    assert len(json.loads(document)["signatures"]) == 2
    assert verify(document, {second[2]: second[1]}).plugins.keys() == index.plugins.keys()
    assert verify(document, {key[2]: key[1], second[2]: second[1]})
    # Every trusted signature must hold: one bad one is refused even beside a good one.
    outer = json.loads(document)
    outer["signatures"][1]["signature"] = outer["signatures"][0]["signature"]
    with pytest.raises(BadSignature):
        verify(json.dumps(outer).encode(), {key[2]: key[1], second[2]: second[1]})


# --- integrity ----------------------------------------------------------------------


def test_wrong_sha_is_refused(built: Built, index: Index) -> None:
    release = pick_release(index, "gakwaya-demo", "1.4")
    data = built.wheels[release.version].read_bytes()
    check_wheel(release, data)
    corrupted = bytes([data[0] ^ 1]) + data[1:]
    with pytest.raises(IntegrityError, match="sha256"):
        check_wheel(release, corrupted)
    with pytest.raises(IntegrityError, match="bytes"):
        check_wheel(release, data + b"\0")


# --- blocklist and selection --------------------------------------------------------


def test_is_blocked() -> None:
    blocklist = load_blocklist(
        b'[{"name": "Gakwaya_Demo", "lowest_good_version": "1.1.0", "reason": "CVE-1"},'
        b' {"name": "gakwaya-evil", "lowest_good_version": null, "reason": "malware"}]'
    )
    assert is_blocked("gakwaya-demo", "1.0.0", blocklist) == "CVE-1"
    assert is_blocked("gakwaya-demo", "1.1.0rc1", blocklist) == "CVE-1"
    assert is_blocked("gakwaya-demo", "1.1.0", blocklist) is None
    assert is_blocked("gakwaya-demo", "1.10", blocklist) is None
    assert is_blocked("gakwaya-evil", "99", blocklist) == "malware"
    assert is_blocked("gakwaya-other", "0.1", blocklist) is None


@pytest.mark.parametrize(
    "data",
    [b"{}", b'[{"name": "x"}]', b'[{"name": "x", "lowest_good_version": "no!", "reason": ""}]'],
)
def test_malformed_blocklist(data: bytes) -> None:
    with pytest.raises(MalformedDocument):
        load_blocklist(data)


def test_pick_newest_compatible(index: Index) -> None:
    assert pick_release(index, "gakwaya-demo", "1.4").version == "1.1.0"
    assert pick_release(index, "Gakwaya_Demo", "2.1").version == "2.0.0"


def test_incompatible_core_api_skipped(index: Index) -> None:
    with pytest.raises(NoInstallableRelease) as caught:
        pick_release(index, "gakwaya-demo", "3.0")
    assert caught.value.reasons["2.0.0"] == "needs core API >=2,<3, this panel has 3.0"
    assert set(caught.value.reasons) == {"2.0.0", "1.1.0", "1.0.0"}


def test_blocklisted_versions_skipped(index: Index) -> None:
    blocklist = [BlockEntry(name="gakwaya-demo", lowest_good_version="1.1.0", reason="CVE-1")]
    assert pick_release(index, "gakwaya-demo", "1.4", blocklist).version == "1.1.0"
    blocklist = [BlockEntry(name="gakwaya-demo", lowest_good_version="1.2", reason="CVE-2")]
    with pytest.raises(NoInstallableRelease, match="blocklisted: CVE-2") as caught:
        pick_release(index, "gakwaya-demo", "1.4", blocklist)
    assert caught.value.reasons == {
        "2.0.0": "needs core API >=2,<3, this panel has 1.4",
        "1.1.0": "blocklisted: CVE-2",
        "1.0.0": "blocklisted: CVE-2",
    }


def test_yanked_skipped(index: Index) -> None:
    copy = decode_index(encode_index(index))
    newest_1x = next(r for r in copy.plugins["gakwaya-demo"].versions if r.version == "1.1.0")
    newest_1x.yanked = True
    assert pick_release(copy, "gakwaya-demo", "1.4").version == "1.0.0"


def test_unknown_plugin(index: Index) -> None:
    with pytest.raises(PluginNotFound, match="no plugin named 'nope'"):
        pick_release(index, "nope", "1.0")
    with pytest.raises(SelectionError, match="not PEP 440"):
        pick_release(index, "gakwaya-demo", "one")


# --- CLI ----------------------------------------------------------------------------


def test_cli_keygen_build_sign_verify(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for wheel in built.wheels.values():
        shutil.copy(wheel, wheels)
    shutil.copy(built.sdist, wheels)  # ignored with a note, never published

    key_file = tmp_path / "key.pem"
    assert main(["keygen", "--out", str(key_file)]) == 0
    trust = capsys.readouterr().out.split("--trusted-key ")[1].strip()
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert main(["keygen", "--out", str(key_file)]) == 1  # never overwrites a key

    unsigned, signed = tmp_path / "index.json", tmp_path / "index.signed.json"
    assert (
        main(["build", "--wheels", str(wheels), "--base-url", BASE_URL, "--out", str(unsigned)])
        == 0
    )
    assert "only wheels are published" in capsys.readouterr().err
    assert len(decode_index(unsigned.read_bytes()).plugins["gakwaya-demo"].versions) == 3
    assert main(["sign", "--key", str(key_file), str(unsigned), "--out", str(signed)]) == 0
    assert main(["verify", "--trusted-key", trust, str(signed)]) == 0
    assert "OK:" in capsys.readouterr().out

    other = generate_key()
    assert (
        main(["verify", "--trusted-key", f"{other[2]}={other[1]}", str(signed)]) == EXIT_UNKNOWN_KEY
    )
    data = signed.read_bytes()
    position = data.index(b"gakwaya_demo-1.0.0")
    signed.write_bytes(data[:position] + b"G" + data[position + 1 :])
    assert main(["verify", "--trusted-key", trust, str(signed)]) == EXIT_BAD_SIGNATURE
    assert "bad signature" in capsys.readouterr().err


def test_cli_runs_as_a_module(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gakwaya_marketplace", "keygen", "--out", str(tmp_path / "k.pem")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "key id:" in result.stdout


# --- installing: plugin name, wheel file names, wheel vs index entry ---------------------


def test_a_release_named_unlike_its_plugin_is_skipped(index: Index) -> None:
    # An index built elsewhere (read_wheel refuses such a wheel): the release's manifest
    # names a plugin other than the distribution the index lists it under.
    copy = decode_index(encode_index(index))
    for release in copy.plugins["gakwaya-demo"].versions:
        if release.version == "1.1.0":
            release.manifest = {**release.manifest, "name": "demo"}
    assert pick_release(copy, "gakwaya-demo", "1.4").version == "1.0.0"
    blocklist = [BlockEntry(name="gakwaya-demo", lowest_good_version="1.0.1", reason="CVE-3")]
    with pytest.raises(NoInstallableRelease) as caught:
        pick_release(copy, "gakwaya-demo", "1.4", blocklist)
    assert caught.value.reasons["1.1.0"] == (
        "its manifest names the plugin 'demo', not gakwaya-demo: a plugin's name must be "
        "its distribution's name"
    )
    assert caught.value.reasons["1.0.0"] == "blocklisted: CVE-3"


def test_wheel_filename(index: Index) -> None:
    release = pick_release(index, "gakwaya-demo", "1.4")
    assert wheel_filename("gakwaya-demo", release) == "gakwaya_demo-1.1.0-py3-none-any.whl"
    replace = msgspec.structs.replace
    source = replace(release, wheel_url=BASE_URL + "gakwaya_demo-1.1.0.tar.gz")
    with pytest.raises(SourceOnlyRelease, match="not a wheel"):
        wheel_filename("gakwaya-demo", source)
    other = replace(release, wheel_url=BASE_URL + "gakwaya_other-1.1.0-py3-none-any.whl")
    with pytest.raises(WheelMismatch, match="gakwaya-other"):
        wheel_filename("gakwaya-demo", other)
    older = replace(release, wheel_url=BASE_URL + "gakwaya_demo-1.0.0-py3-none-any.whl")
    with pytest.raises(WheelMismatch, match=r"version 1\.0\.0"):
        wheel_filename("gakwaya-demo", older)
    for bad in ("-x-1.1.0-py3-none-any.whl", "gakwaya%20demo-1.1.0-py3-none-any.whl", ".whl"):
        with pytest.raises(SelectionError):
            wheel_filename("gakwaya-demo", replace(release, wheel_url=BASE_URL + bad))
    # Only the last path segment counts: a path in the URL never becomes a local path.
    deep = replace(release, wheel_url="https://x.org/a/../../gakwaya_demo-1.1.0-py3-none-any.whl")
    assert wheel_filename("gakwaya-demo", deep) == "gakwaya_demo-1.1.0-py3-none-any.whl"


def test_check_wheel_matches(built: Built, index: Index) -> None:
    release = pick_release(index, "gakwaya-demo", "1.4")
    info = read_wheel(built.wheels["1.1.0"])
    check_wheel_matches("gakwaya-demo", release, info)
    with pytest.raises(WheelMismatch, match="METADATA"):
        check_wheel_matches("gakwaya-other", release, info)
    older = read_wheel(built.wheels["1.0.0"])
    with pytest.raises(WheelMismatch, match=r"version 1\.0\.0"):
        check_wheel_matches("gakwaya-demo", release, older)
    claimed = msgspec.structs.replace(release, manifest={**release.manifest, "core_api": ">=0"})
    with pytest.raises(WheelMismatch, match="manifest"):
        check_wheel_matches("gakwaya-demo", claimed, info)

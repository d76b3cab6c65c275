"""The Dockerfile rewrite that injects an extra CA bundle, and its safety on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gakwaya_dockerfile import rewrite
from gakwaya_dockerfile.builder import prepare_extra_ca, read_bundle
from gakwaya_sdk.providers import ProviderError

INJECTED = "".join(rewrite.injected_lines())
PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_the_injected_lines_copy_the_bundle_and_point_every_tool_at_it() -> None:
    lines = rewrite.injected_lines()
    assert lines[0] == f"COPY .gakwaya/extra-ca.pem {rewrite.IMAGE_BUNDLE}\n"
    args = {line.split()[1].split("=")[0]: line.split("=", 1)[1].strip() for line in lines[1:]}
    assert set(args) == {
        "SSL_CERT_FILE",
        "PIP_CERT",
        "REQUESTS_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "npm_config_cafile",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
    }
    assert set(args.values()) == {rewrite.IMAGE_BUNDLE}
    assert all(line.startswith("ARG ") for line in lines[1:])


def test_after_a_single_from() -> None:
    source = "FROM base\nRUN pip install x\n"
    assert rewrite.inject_ca(source) == "FROM base\n" + INJECTED + "RUN pip install x\n"


def test_after_every_stage_of_a_multi_stage_build() -> None:
    source = (
        "FROM base AS build\n"
        "RUN npm ci\n"
        "from --platform=linux/amd64 base as final\n"
        "COPY --from=build /app /app\n"
        "FROM scratch\n"
    )
    assert rewrite.inject_ca(source) == (
        "FROM base AS build\n"
        + INJECTED
        + "RUN npm ci\n"
        + "from --platform=linux/amd64 base as final\n"
        + INJECTED
        + "COPY --from=build /app /app\n"
        + "FROM scratch\n"
        + INJECTED
    )


def test_directives_and_comments_stay_on_top_and_comments_are_not_instructions() -> None:
    source = (
        "# syntax=docker/dockerfile:1\n"
        "# FROM not-an-instruction\n"
        "\n"
        "   # FROM indented comment\n"
        "ARG VERSION=1\n"
        "FROM base:${VERSION}\n"
        'CMD ["app"]\n'
    )
    out = rewrite.inject_ca(source)
    assert out.startswith("# syntax=docker/dockerfile:1\n# FROM not-an-instruction\n")
    assert out.count("COPY .gakwaya/extra-ca.pem") == 1
    assert "FROM base:${VERSION}\n" + INJECTED + 'CMD ["app"]\n' in out


def test_after_the_last_line_of_a_continued_from() -> None:
    source = "FROM \\\n  base \\\n# a comment inside\n\n  AS build\nRUN true\n"
    assert rewrite.inject_ca(source) == (
        "FROM \\\n  base \\\n# a comment inside\n\n  AS build\n" + INJECTED + "RUN true\n"
    )


def test_from_inside_another_instruction_is_not_a_stage() -> None:
    source = "FROM base\nRUN echo one \\\n  FROM x \\\n  && echo two\nLABEL note=FROM\n"
    out = rewrite.inject_ca(source)
    assert out.count("COPY .gakwaya/extra-ca.pem") == 1
    assert out == "FROM base\n" + INJECTED + source.removeprefix("FROM base\n")


def test_the_escape_directive_changes_the_continuation_character() -> None:
    source = "# escape=`\nFROM `\n  base AS win\nRUN dir C:\\\nRUN echo done\n"
    out = rewrite.inject_ca(source)
    # The backtick continues the FROM; a trailing backslash no longer continues RUN.
    assert out == "# escape=`\nFROM `\n  base AS win\n" + INJECTED + "RUN dir C:\\\nRUN echo done\n"


def test_an_escape_directive_after_an_instruction_is_only_a_comment() -> None:
    source = "FROM base\n# escape=`\nRUN echo a `\nRUN echo b\n"
    out = rewrite.inject_ca(source)
    assert out == "FROM base\n" + INJECTED + "# escape=`\nRUN echo a `\nRUN echo b\n"


def test_crlf_and_a_missing_final_newline() -> None:
    out = rewrite.inject_ca("FROM base\r\nRUN true\r\nFROM other")
    crlf = "".join(rewrite.injected_lines("\r\n"))
    assert out == "FROM base\r\n" + crlf + "RUN true\r\nFROM other\n" + crlf


def test_dockerignore_keeps_the_injected_directory() -> None:
    assert rewrite.keep_in_context("") == "!.gakwaya\n!.gakwaya/**\n"
    assert rewrite.keep_in_context("*\n.*") == "*\n.*\n!.gakwaya\n!.gakwaya/**\n"


def _context(tmp_path: Path, dockerfile: str = "FROM base\n") -> Path:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    return context


def test_prepare_writes_the_bundle_and_the_rewritten_dockerfile(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(PEM)
    context = _context(tmp_path)
    (context / ".dockerignore").write_text("*\n")
    path = prepare_extra_ca(context, "Dockerfile", str(bundle))
    assert path == ".gakwaya/Dockerfile"
    assert (context / ".gakwaya" / "extra-ca.pem").read_bytes() == PEM
    assert (context / ".gakwaya" / "extra-ca.pem").stat().st_mode & 0o777 == 0o644
    assert (context / path).read_text() == "FROM base\n" + INJECTED
    assert (context / "Dockerfile").read_text() == "FROM base\n"
    assert (context / ".dockerignore").read_text() == "*\n!.gakwaya\n!.gakwaya/**\n"


def test_prepare_never_writes_through_a_symlink_in_the_repository(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(PEM)
    outside = tmp_path / "outside"
    outside.mkdir()
    context = _context(tmp_path)
    os.symlink(outside, context / ".gakwaya")
    prepare_extra_ca(context, "Dockerfile", str(bundle))
    assert list(outside.iterdir()) == []
    assert not (context / ".gakwaya").is_symlink()
    assert (context / ".gakwaya" / "extra-ca.pem").read_bytes() == PEM

    (outside / "ignore").write_text("*\n")
    os.symlink(outside / "ignore", context / ".dockerignore")
    with pytest.raises(ProviderError, match="symbolic link"):
        prepare_extra_ca(context, "Dockerfile", str(bundle))
    assert (outside / "ignore").read_text() == "*\n"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("relative/ca.pem", "absolute path"),
        ("/nonexistent/gakwaya/ca.pem", "cannot be read"),
        ("DIR", "not a regular file|cannot be read"),
        ("NOT_PEM", "no PEM certificate"),
    ],
)
def test_a_bad_bundle_setting_is_refused_naming_the_setting(
    tmp_path: Path, value: str, rule: str
) -> None:
    (tmp_path / "plain.txt").write_text("not a certificate\n")
    value = {"DIR": str(tmp_path), "NOT_PEM": str(tmp_path / "plain.txt")}.get(value, value)
    with pytest.raises(ProviderError, match=rule) as caught:
        read_bundle(value)
    assert "extra_ca_bundle" in str(caught.value)


def test_labels_become_one_final_label_line() -> None:
    from gakwaya_dockerfile.rewrite import append_labels, labels_inline

    labels = {"gakwaya.app": "0f3a-a1", "gakwaya.managed": "true"}
    assert labels_inline(labels)
    text = append_labels("FROM base\nRUN true", labels)
    assert text == "FROM base\nRUN true\nLABEL gakwaya.app=0f3a-a1 gakwaya.managed=true\n"
    assert append_labels("FROM base\r\n", labels).endswith("gakwaya.managed=true\r\n")
    assert append_labels("FROM base\n", {}) == "FROM base\n"
    # A value a plain LABEL line cannot hold goes through the engine's option instead.
    assert not labels_inline({"note": "two words"})
    assert not labels_inline({"x": "a\nRUN touch /tmp/x"})

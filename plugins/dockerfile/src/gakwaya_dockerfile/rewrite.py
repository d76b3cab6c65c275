"""Injecting an extra CA bundle into every stage of a Dockerfile.

Behind a TLS-intercepting proxy (a corporate network, these test machines) a build's
``pip install`` or ``npm ci`` fails certificate checks, because the image only trusts
the public CAs. The builder cannot change the base image, but the checkout is a
throwaway copy: it writes the bundle into the context and a rewritten Dockerfile that,
right after every ``FROM``, copies the bundle in and declares ``ARG``s pointing the
usual tools at it. ARGs (unlike ENV) reach ``RUN`` steps without being persisted in
the image's environment, so the running app is not affected.

The rewrite works on the Dockerfile's syntax, not on text patterns: parser directives
(``# escape=`` changes the continuation character), comments, blank lines and
continuation lines are carried over unchanged, and the injected lines go after the
*last* physical line of each ``FROM`` instruction, whatever its flags or ``AS`` name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

#: Where the bundle lands inside the build context and inside each stage.
CONTEXT_DIR = ".gakwaya"
CONTEXT_BUNDLE = f"{CONTEXT_DIR}/extra-ca.pem"
CONTEXT_DOCKERFILE = f"{CONTEXT_DIR}/Dockerfile"
IMAGE_BUNDLE = "/usr/local/share/gakwaya/extra-ca.pem"

#: Variables read by OpenSSL/Python, pip, requests, Node.js, npm, curl and git.
CA_VARIABLES = (
    "SSL_CERT_FILE",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "npm_config_cafile",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
)

#: ``.dockerignore`` lines that keep the injected directory in the context even when
#: the app's own patterns (``*``, ``.*``) would exclude it.
DOCKERIGNORE_KEEP = ("!.gakwaya", "!.gakwaya/**")

_DIRECTIVE = re.compile(r"^\s*#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_COMMENT = re.compile(r"^\s*#")
_KEYWORD = re.compile(r"^\s*([A-Za-z]+)(?:\s|$)")


def injected_lines(newline: str = "\n") -> list[str]:
    """What goes after each ``FROM``: the bundle, then one ARG per variable."""
    lines = [f"COPY {CONTEXT_BUNDLE} {IMAGE_BUNDLE}"]
    lines += [f"ARG {name}={IMAGE_BUNDLE}" for name in CA_VARIABLES]
    return [line + newline for line in lines]


def _escape_char(lines: list[str]) -> str:
    """The ``escape`` parser directive's character (``\\`` unless set to `` ` ``).

    Directives are only recognised at the very top: the first blank line, plain
    comment or instruction ends them (as Docker's parser does)."""
    seen: set[str] = set()
    escape = "\\"
    for line in lines:
        match = _DIRECTIVE.match(line.rstrip("\r\n"))
        if not match:
            break
        name = match.group(1).lower()
        if name in seen:
            break
        seen.add(name)
        if name == "escape" and match.group(2) in ("\\", "`"):
            escape = match.group(2)
    return escape


def _continues(line: str, escape: str) -> bool:
    return line.rstrip().endswith(escape)


def _instructions(lines: list[str], escape: str) -> Iterator[tuple[str, int]]:
    """``(keyword, index of its last physical line)`` for each instruction.

    Inside a continued instruction, comment lines and blank lines are skipped by
    Docker without ending it; we do the same."""
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip() or _COMMENT.match(line):
            index += 1
            continue
        match = _KEYWORD.match(line)
        keyword = match.group(1).upper() if match else ""
        current = line
        while _continues(current, escape) and index + 1 < len(lines):
            index += 1
            current = lines[index]
            while (not current.strip() or _COMMENT.match(current)) and index + 1 < len(lines):
                index += 1
                current = lines[index]
        yield keyword, index
        index += 1


def inject_ca(dockerfile: str) -> str:
    """``dockerfile`` with the CA bundle copied in and announced after every ``FROM``."""
    lines = dockerfile.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    escape = _escape_char(lines)
    after = {last for keyword, last in _instructions(lines, escape) if keyword == "FROM"}
    out: list[str] = []
    for index, line in enumerate(lines):
        out.append(line)
        if index in after:
            out += injected_lines(newline)
    return "".join(out)


def keep_in_context(dockerignore: str) -> str:
    """``dockerignore`` with lines appended so ``.gakwaya/`` is always sent.

    Later lines win in ``.dockerignore``, so appending the exceptions is enough."""
    text = dockerignore
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "".join(f"{line}\n" for line in DOCKERIGNORE_KEEP)


#: Label keys and values the builder writes into the Dockerfile itself (the kernel's
#: ``gakwaya.*`` labels); anything else goes through the engine's ``labels`` option.
_LABEL_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9._-]{0,200}$")


def labels_inline(labels: dict[str, str]) -> bool:
    """Whether every label can be written as one plain ``LABEL`` line (no quoting)."""
    return all(_LABEL_KEY.match(k) and _LABEL_VALUE.match(v) for k, v in labels.items())


def append_labels(dockerfile: str, labels: dict[str, str]) -> str:
    """``dockerfile`` with one ``LABEL`` instruction for ``labels`` at the end.

    Why: the legacy builder turns each label of its ``labels`` option into a step of
    its own (a container and a commit each); one line is one step."""
    if not labels:
        return dockerfile
    if dockerfile and not dockerfile.endswith(("\n", "\r")):
        dockerfile += "\n"
    newline = "\r\n" if dockerfile.endswith("\r\n") else "\n"
    pairs = " ".join(f"{key}={value}" for key, value in sorted(labels.items()))
    return f"{dockerfile}LABEL {pairs}{newline}"

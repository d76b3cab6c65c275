"""Rules for the values that reach git, a file path or Docker: one definition for the
API edge (which refuses a bad value with a 4xx naming the field and the rule) and
for providers (which check again before they run anything).

Each ``check_*`` function returns the value unchanged when it is acceptable and
raises :class:`RuleError` (a ``ValueError``) whose message is the rule otherwise.
The ``*_PATTERN`` constants are the same rules for msgspec and JSON Schema where a
regular expression can say all of it; the functions also check what a pattern
cannot (``..`` segments, ``.lock`` suffixes, symlinks leaving a checkout).

Why so strict: git treats ``ext::`` and ``file://`` URLs and arguments starting
with ``-`` as instructions (``--upload-pack=…`` runs a command), Docker treats a
reference with a leading ``-`` as an option, and a path with ``..`` or a symlink can
reach the host's files. A value that passes here is safe as one element of an
argument list; it is never safe inside a shell string, and we never build one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: Characters no value here may contain: whitespace, control characters and the
#: shell's metacharacters (a URL does not need them; refusing them early gives a
#: clear message instead of a confusing one from git).
_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f;&|$`<>()'\"\\*?!{}\[\]^~#]")


class RuleError(ValueError):
    """The value breaks the rule given as the message."""


# Git URLs --------------------------------------------------------------------------------

_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
_USER = r"[A-Za-z0-9._-]{1,64}"
_REPO_PATH = r"[A-Za-z0-9._~%+-][A-Za-z0-9._~%+/@:=-]{0,499}"
GIT_URL_RULE = (
    "a git URL: https://host/path, ssh://[user@]host[:port]/path or user@host:path; "
    "no ext:: or file:// transports, no leading '-', no spaces, quotes or shell "
    "characters, no '..' segments, at most 500 characters"
)
_HTTPS = re.compile(rf"^https://(?:{_USER}@)?{_HOST}(?::[0-9]{{1,5}})?/{_REPO_PATH}$(?!\n)")
_SSH = re.compile(rf"^ssh://(?:{_USER}@)?{_HOST}(?::[0-9]{{1,5}})?/{_REPO_PATH}$(?!\n)")
_SCP = re.compile(rf"^{_USER}@{_HOST}:(?!/?-){_REPO_PATH}$(?!\n)")


def check_git_url(value: str) -> str:
    """An ``https://``, ``ssh://`` or scp-style (``git@host:owner/repo.git``) URL."""
    if (
        not value
        or len(value) > 500
        or value.startswith("-")
        or _FORBIDDEN.search(value)
        or "::" in value
        or any(part == ".." for part in re.split(r"[/:]", value))
    ):
        raise RuleError(GIT_URL_RULE)
    if value.startswith("https://"):
        ok = _HTTPS.match(value)
    elif value.startswith("ssh://"):
        ok = _SSH.match(value)
    elif "://" in value:
        ok = None
    else:
        ok = _SCP.match(value)
    if not ok:
        raise RuleError(GIT_URL_RULE)
    return value


def git_url_kind(value: str) -> str:
    """``https`` or ``ssh`` (scp-style URLs are ssh) for a URL :func:`check_git_url` accepted."""
    return "https" if value.startswith("https://") else "ssh"


# Git refs --------------------------------------------------------------------------------

GIT_REF_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._/+-]{0,199}$(?!\n)"
GIT_REF_RULE = (
    "a branch, tag or commit: 1 to 200 letters, digits and . _ / + -, starting with a "
    "letter, digit or _; no '..', '//', '@{', no segment starting with '.' or '-' and "
    "none ending in '.lock', not ending with '/' or '.'"
)
_REF = re.compile(GIT_REF_PATTERN)
COMMIT_PATTERN = r"^[0-9a-f]{40}$(?!\n)|^[0-9a-f]{64}$(?!\n)"
_COMMIT = re.compile(COMMIT_PATTERN)


def check_git_ref(value: str) -> str:
    """A branch, tag or full commit id (``git check-ref-format`` rules, stricter)."""
    if not _REF.match(value) or ".." in value or "//" in value or "@{" in value:
        raise RuleError(GIT_REF_RULE)
    if value.endswith(("/", ".")):
        raise RuleError(GIT_REF_RULE)
    for segment in value.split("/"):
        if segment.startswith((".", "-")) or segment.endswith(".lock"):
            raise RuleError(GIT_REF_RULE)
    return value


def is_commit(value: str) -> bool:
    """Whether ``value`` is a full commit id (40 or 64 lowercase hex digits)."""
    return bool(_COMMIT.match(value))


# Paths inside a checkout -----------------------------------------------------------------

RELATIVE_PATH_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}$(?!\n)"
RELATIVE_PATH_RULE = (
    "a relative path inside the repository: 1 to 255 letters, digits and . _ / -, "
    "not starting with '/', '.' or '-', with no '..' segment"
)
_RELPATH = re.compile(RELATIVE_PATH_PATTERN)


def check_relative_path(value: str) -> str:
    """A path below the checkout's root, as a user types it (``services/web``)."""
    if not _RELPATH.match(value) or any(
        part in ("..", ".") or part.startswith("-") for part in value.split("/")
    ):
        raise RuleError(RELATIVE_PATH_RULE)
    return value


def confine(root: str | os.PathLike[str], relative: str) -> Path:
    """``root / relative`` with every symlink resolved, refused when it leaves ``root``.

    Checks the rule of :func:`check_relative_path` too, so a provider can call it on
    values it did not validate itself. A symlink in the repository pointing outside
    the checkout (``web -> /etc``) is refused here."""
    check_relative_path(relative)
    base = Path(root).resolve(strict=True)
    target = (base / relative).resolve(strict=False)
    if target != base and base not in target.parents:
        raise RuleError(f"{relative!r} leads outside the repository (through a symlink)")
    return target


# Image references ------------------------------------------------------------------------

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REGISTRY = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?/)"  # noqa: E501
IMAGE_REF_PATTERN = (
    rf"^{_REGISTRY}?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$(?!\n)"
)
IMAGE_REF_RULE = (
    "an image reference like registry.example.com/team/web:1.2 or "
    "debian@sha256:<64 hex>: lowercase name components separated by '/', an optional "
    "tag of letters, digits, '_', '.', '-', an optional sha256 digest; at most 255 "
    "characters, no leading '-'"
)
_IMAGE = re.compile(IMAGE_REF_PATTERN)


def check_image_ref(value: str) -> str:
    """A Docker image reference (the distribution grammar, without uppercase names)."""
    if len(value) > 255 or not _IMAGE.match(value):
        raise RuleError(IMAGE_REF_RULE)
    return value


# Environment variables -------------------------------------------------------------------

ENV_KEY_PATTERN = r"^[A-Z_][A-Z0-9_]{0,127}$(?!\n)"
ENV_KEY_RULE = (
    "an environment variable name: [A-Z_][A-Z0-9_]*, at most 128 characters; PORT and "
    "names starting with GAKWAYA_ are set by the platform"
)
_ENV_KEY = re.compile(ENV_KEY_PATTERN)
#: Set by the platform in every container; a user's value would be overwritten.
RESERVED_ENV_KEYS = frozenset({"PORT"})
RESERVED_ENV_PREFIX = "GAKWAYA_"


def check_env_key(value: str) -> str:
    """A variable name an app may set (``DATABASE_URL``)."""
    if (
        not _ENV_KEY.match(value)
        or value in RESERVED_ENV_KEYS
        or value.startswith(RESERVED_ENV_PREFIX)
    ):
        raise RuleError(ENV_KEY_RULE)
    return value


ENV_VALUE_RULE = "at most 32768 characters, no NUL character"


def check_env_value(value: str) -> str:
    """Any text but NUL (which no process environment can hold)."""
    if len(value) > 32768 or "\x00" in value:
        raise RuleError(ENV_VALUE_RULE)
    return value


__all__ = [
    "COMMIT_PATTERN",
    "ENV_KEY_PATTERN",
    "ENV_KEY_RULE",
    "ENV_VALUE_RULE",
    "GIT_REF_PATTERN",
    "GIT_REF_RULE",
    "GIT_URL_RULE",
    "IMAGE_REF_PATTERN",
    "IMAGE_REF_RULE",
    "RELATIVE_PATH_PATTERN",
    "RELATIVE_PATH_RULE",
    "RESERVED_ENV_KEYS",
    "RESERVED_ENV_PREFIX",
    "RuleError",
    "check_env_key",
    "check_env_value",
    "check_git_ref",
    "check_git_url",
    "check_image_ref",
    "check_relative_path",
    "confine",
    "git_url_kind",
    "is_commit",
]

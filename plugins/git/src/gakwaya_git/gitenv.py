"""The environment every git process of this provider runs with.

Git reads instructions from many places besides its arguments: system and global
configuration, ``GIT_*`` variables, askpass programs, templates and hooks. Each
one is pinned here, so the only inputs are the validated URL and ref:

- configuration: no system or global file (``GIT_CONFIG_NOSYSTEM``,
  ``GIT_CONFIG_GLOBAL=/dev/null``), no inherited ``-c`` values
  (``GIT_CONFIG_PARAMETERS``), ours given as ``GIT_CONFIG_COUNT/KEY_n/VALUE_n``,
  which keeps the token out of the argument list (``ps`` shows argv to everyone);
- transports: only ``https`` and ``ssh`` may run (``protocol.allow=never`` plus
  the two exceptions, and ``GIT_ALLOW_PROTOCOL``), so ``ext::``, ``file://`` and
  ``git://`` stay impossible even if a check upstream were wrong;
- no prompt or askpass program (a job has no terminal), no hooks, no templates, no
  fsmonitor, no submodule recursion, no background gc;
- ssh through our ``GIT_SSH`` wrapper only.

GitPython starts its processes from a copy of ``os.environ`` (it can add to the
environment, not remove from it). Variables we cannot neutralise by overriding them
(git acts on their mere presence, or they redirect where objects are written) make
the operation refuse to run, naming the variable, rather than run with them.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from gakwaya_sdk.providers import ProviderError

#: Inherited variables that would bypass our rules: ``GIT_SSL_NO_VERIFY`` disables TLS
#: checks when merely set, ``GIT_SSH_COMMAND`` (a shell command) wins over ``GIT_SSH``,
#: ``GIT_PROXY_COMMAND`` runs a program, ``GIT_CURL_VERBOSE`` (even "0") dumps every
#: request into the log, the others redirect the repository's files.
REFUSED_INHERITED = (
    "GIT_SSL_NO_VERIFY",
    "GIT_SSH_COMMAND",
    "GIT_PROXY_COMMAND",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_SHALLOW_FILE",
    "GIT_REPLACE_REF_BASE",
    "GIT_EXTERNAL_DIFF",
    "GIT_CURL_VERBOSE",
)

DEFAULT_HTTPS_USERNAME = "x-access-token"


def check_inherited(environ: Mapping[str, str] | None = None) -> None:
    environ = os.environ if environ is None else environ
    found = [name for name in REFUSED_INHERITED if name in environ]
    if found:
        raise ProviderError(
            f"the panel's environment sets {', '.join(found)}, which would bypass "
            "gakwaya-git's rules for git: unset it in the panel's service environment"
        )


def basic_authorization(token: str, username: str) -> str:
    """The header value for a token (GitHub, GitLab, Gitea and Bitbucket all take
    Basic with the token as password and any, or a documented, user name)."""
    if not token or "\x00" in token:
        raise ProviderError("https_token: a non-empty token")
    if not username or any(c in username for c in ":\x00\r\n") or len(username) > 200:
        raise ProviderError("https_username: 1 to 200 characters, no ':' or control character")
    raw = f"{username}:{token}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def https_origin(url: str) -> str:
    """``https://host[:port]/``: the URL prefix the token is scoped to, so git never
    sends it to another host a redirect points at."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"https://{host}{port}/"


def git_environment(
    *,
    home: str,
    templates: str,
    hooks: str,
    git_dir: str,
    work_tree: str | None = None,
    config: list[tuple[str, str]] | None = None,
    ssh_program: str | None = None,
    ca_bundle: str | None = None,
    system_ca: str | None = None,
    ca_directory: str | None = None,
) -> dict[str, str]:
    """Variables for one git process (added over ``os.environ`` by GitPython).

    TLS trust: ``ca_bundle`` (the operator's setting, merged with the system's CAs)
    wins over any inherited ``GIT_SSL_CAINFO``; without it, ``system_ca`` is only
    configuration, so an operator's ``GIT_SSL_CAINFO``/``GIT_SSL_CAPATH`` in the
    panel's environment still decide. ``ca_directory`` (an empty directory) replaces
    libcurl's compiled-in CA directory whenever a CA file is given."""
    pairs: list[tuple[str, str]] = [
        ("protocol.allow", "never"),
        ("protocol.https.allow", "always"),
        ("protocol.ssh.allow", "always"),
        ("core.hooksPath", hooks),
        ("core.fsmonitor", "false"),
        ("core.askPass", ""),
        ("credential.helper", ""),
        ("fetch.recurseSubmodules", "false"),
        ("submodule.recurse", "false"),
        ("gc.auto", "0"),
        ("maintenance.auto", "false"),
        ("init.defaultBranch", "main"),
        ("advice.detachedHead", "false"),
        ("http.sslVerify", "true"),
    ]
    if ca_bundle or system_ca:
        pairs.append(("http.sslCAInfo", ca_bundle or system_ca or ""))
        if ca_directory:
            pairs.append(("http.sslCAPath", ca_directory))
    pairs.extend(config or ())
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_PARAMETERS": "",
        "GIT_ALLOW_PROTOCOL": "https:ssh",
        "GIT_PROTOCOL_FROM_USER": "0",
        # Empty means "none" to git; an inherited askpass program would otherwise run.
        "GIT_ASKPASS": "",
        "SSH_ASKPASS": "",
        "SSH_ASKPASS_REQUIRE": "never",
        "GIT_TEMPLATE_DIR": templates,
        "GIT_DIR": git_dir,
        "HOME": home,
        "XDG_CONFIG_HOME": home,
        "GIT_TRACE": "0",
        "GIT_TRACE_PACKET": "0",
        "GIT_TRACE_CURL": "0",
        "GIT_TRACE2": "0",
        "GIT_TRACE2_EVENT": "0",
        "GIT_TRACE2_PERF": "0",
        "GIT_TRACE_REDACT": "1",
        "GIT_CONFIG_COUNT": str(len(pairs)),
    }
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    if work_tree is not None:
        env["GIT_WORK_TREE"] = work_tree
    if ssh_program is not None:
        env["GIT_SSH"] = ssh_program
        env["GIT_SSH_VARIANT"] = "ssh"
    if ca_bundle:
        # Set after the configuration by git, so it also beats an inherited value.
        env["GIT_SSL_CAINFO"] = ca_bundle
        if ca_directory:
            env["GIT_SSL_CAPATH"] = ca_directory
    return env

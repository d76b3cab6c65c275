"""``git:generic``: any https://, ssh:// or scp-style repository, fetched shallow.

Every value that reaches git is checked again here with the SDK's rules (the API
edge checked it already; a provider never relies on that), and every git process
runs with the pinned environment of :mod:`gakwaya_git.gitenv`, an argument list and
``--`` before its positional arguments.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import git

from gakwaya_git.config import GitConfig
from gakwaya_git.gitenv import (
    DEFAULT_HTTPS_USERNAME,
    basic_authorization,
    check_inherited,
    git_environment,
    https_origin,
)
from gakwaya_git.refs import parse_ls_remote, pick
from gakwaya_git.runner import Cancelled, GitFailed, run_git
from gakwaya_git.scrub import Scrubber
from gakwaya_git.workspace import Workspace, system_ca_file
from gakwaya_sdk.providers import (
    CancelledFn,
    LogFn,
    ProviderError,
    SourceRevision,
    SourceSpec,
)
from gakwaya_sdk.sources import RuleError, check_git_ref, check_git_url, git_url_kind, is_commit

#: ``ls-remote`` has no ``cancelled`` from the caller: it gets this many seconds.
RESOLVE_TIMEOUT = 120.0
#: Longest commit summary returned (a message's first line can be anything).
SUMMARY_MAX = 500


def _never() -> bool:
    return False


def checked(spec: SourceSpec) -> tuple[str, str]:
    """The URL and ref, or ProviderError naming the field and its rule (not the value:
    it may be long, or hold what a log should not show)."""
    try:
        url = check_git_url(spec.url)
    except RuleError as exc:
        raise ProviderError(f"url: must be {exc}") from None
    if spec.ref:
        try:
            check_git_ref(spec.ref)
        except RuleError as exc:
            raise ProviderError(f"ref: must be {exc}") from None
    return url, spec.ref


def _prepare_dest(dest: str) -> Path:
    path = Path(dest)
    path.mkdir(parents=True, exist_ok=True)
    if any(path.iterdir()):
        raise ProviderError("the destination directory is not empty")
    return path


def _empty(path: Path) -> None:
    """Remove what the failed fetch put in ``path`` (which was empty), keeping ``path``."""
    if not path.is_dir():
        return
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


class GitSource:
    """The ``git:generic`` :class:`~gakwaya_sdk.providers.SourceProvider`.

    ``config`` is called at each operation, so settings changed by an operator apply
    to the next fetch without a restart."""

    capability = "git:generic"

    def __init__(self, config: Callable[[], GitConfig]) -> None:
        self._config = config

    # Protocol ----------------------------------------------------------------------------

    def accepts(self, *, url: str) -> bool:
        try:
            check_git_url(url)
        except RuleError:
            return False
        return True

    def fetch(
        self, *, spec: SourceSpec, dest: str, log: LogFn, cancelled: CancelledFn = _never
    ) -> SourceRevision:
        url, ref = checked(spec)
        check_inherited()
        if cancelled():
            raise Cancelled()
        target = _prepare_dest(dest)
        scrub = _scrubber(url, spec.credentials)
        try:
            with self._session(
                url, spec.credentials, git_dir=target / ".git", work_tree=target
            ) as env:
                run = partial(
                    run_git, cwd=str(target), env=env, scrub=scrub, cancelled=cancelled, log=log
                )
                fmt = ["--object-format=sha256"] if len(ref) == 64 and is_commit(ref) else []
                run(["init", "--quiet", *fmt], what="git init")
                fetched = self._fetch(run, url, ref, log)
                # Checking FETCH_HEAD out peels an annotated tag to its commit; the
                # revision is then HEAD's.
                run(["checkout", "--quiet", "--detach", fetched, "--"], what="git checkout")
                revision = _revision(target, "HEAD", env)
        except BaseException:
            _empty(target)
            raise
        return revision

    def resolve(self, *, spec: SourceSpec) -> str:
        url, ref = checked(spec)
        if is_commit(ref):
            return ref
        check_inherited()
        scrub = _scrubber(url, spec.credentials)
        deadline = time.monotonic() + RESOLVE_TIMEOUT
        with self._session(url, spec.credentials, git_dir=None, work_tree=None) as env:
            run = partial(
                run_git,
                cwd=env["HOME"],
                env=env,
                scrub=scrub,
                cancelled=lambda: time.monotonic() > deadline,
            )
            try:
                run(["init", "--quiet"], what="git init")
                patterns = [ref or "HEAD", (ref or "HEAD") + "^{}"]
                output = run(["ls-remote", "--", url, *patterns], what="git ls-remote")
            except Cancelled:
                raise ProviderError(
                    f"git ls-remote timed out after {RESOLVE_TIMEOUT:.0f} s"
                ) from None
        commit = pick(ref, parse_ls_remote(output))
        if commit is None:
            raise ProviderError(f"ref: {ref or 'HEAD'!r} was not found in the repository")
        return commit

    # Steps -------------------------------------------------------------------------------

    @contextmanager
    def _session(
        self,
        url: str,
        credentials: Mapping[str, str],
        *,
        git_dir: Path | None,
        work_tree: Path | None,
    ) -> Iterator[dict[str, str]]:
        """The workspace (removed on exit) and the environment of this operation's git."""
        with Workspace(self._config()) as ws:
            config: list[tuple[str, str]] = []
            ssh_program = ca_bundle = system_ca = ca_directory = None
            if git_url_kind(url) == "https":
                ca_bundle = ws.ca_bundle()
                system_ca = None if ca_bundle else system_ca_file()
                if ca_bundle or system_ca:
                    ca_directory = ws.empty_ca_directory()
                token = credentials.get("https_token")
                if token:
                    username = credentials.get("https_username") or DEFAULT_HTTPS_USERNAME
                    header = basic_authorization(token, username)
                    # Scoped to the URL's origin: a redirect elsewhere never gets it.
                    config.append(
                        (f"http.{https_origin(url)}.extraHeader", f"Authorization: {header}")
                    )
            else:
                ssh_program = ws.ssh_program(credentials.get("ssh_private_key"))
            yield git_environment(
                home=str(ws.home),
                templates=str(ws.templates),
                hooks=str(ws.hooks),
                git_dir=str(git_dir if git_dir is not None else ws.scratch),
                work_tree=str(work_tree if work_tree is not None else ws.home),
                config=config,
                ssh_program=ssh_program,
                ca_bundle=ca_bundle,
                system_ca=system_ca,
                ca_directory=ca_directory,
            )

    @staticmethod
    def _fetch(run: Callable[..., str], url: str, ref: str, log: LogFn) -> str:
        """Fetch ``ref`` from ``url`` (no remote is configured: one git process less);
        what to check out."""
        if not is_commit(ref):
            run(["fetch", "--depth=1", "--no-tags", "--", url, ref or "HEAD"], what="git fetch")
            return "FETCH_HEAD"
        try:
            run(["fetch", "--depth=1", "--no-tags", "--", url, ref], what="git fetch")
        except GitFailed:
            # Servers without uploadpack.allow*SHA1InWant (protocol v0) refuse a commit
            # they do not advertise: take the whole history, then look for it.
            log("The server does not send a commit by id; fetching the full history")
            run(
                [
                    "fetch",
                    "--no-tags",
                    "--",
                    url,
                    "+refs/heads/*:refs/remotes/origin/*",
                    "+refs/tags/*:refs/tags/*",
                ],
                what="git fetch",
            )
        try:
            run(["cat-file", "-e", "--end-of-options", f"{ref}^{{commit}}"], what="git cat-file")
        except GitFailed:
            raise ProviderError(f"ref: commit {ref} was not found in the repository") from None
        return ref


def _scrubber(url: str, credentials: Mapping[str, str]) -> Scrubber:
    secrets = [value for value in credentials.values() if value]
    token = credentials.get("https_token")
    if token:
        username = credentials.get("https_username") or DEFAULT_HTTPS_USERNAME
        try:
            header = basic_authorization(token, username)
            secrets += [header, header.removeprefix("Basic ")]
        except ProviderError:
            pass  # refused before any git runs, with its own message
    if url.startswith("https://"):
        # An https user name may be a token pasted into the URL.
        userinfo = urlsplit(url).username
        if userinfo:
            secrets.append(userinfo)
    return Scrubber(secrets)


def _revision(path: Path, commit: str, env: Mapping[str, str]) -> SourceRevision:
    repo: Any = git.Repo(path)
    try:
        # GitPython's own git processes (cat-file) get the same pinned environment.
        repo.git.update_environment(**env)
        found = repo.commit(commit)
        message = found.message
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        summary = (message.strip().splitlines() or [""])[0][:SUMMARY_MAX]
        author = f"{found.author.name} <{found.author.email}>"
        return SourceRevision(commit=found.hexsha, message=summary, author=author)
    finally:
        repo.close()

"""The ``builder:dockerfile`` provider: ``docker build`` through the engine's API.

The build runs on the local engine with its legacy builder (layer cache reused,
intermediate containers always removed, nothing pulled). Output is read in a
thread so that cancellation is noticed even while a step is silent for minutes:
the calling thread polls ``cancelled()``, and when it turns true it shuts the
HTTP connection down, which makes the engine abort the build and remove the step's
container. The builder then makes sure no container of this build is left.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import socket
import stat
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from gakwaya_dockerfile import rewrite
from gakwaya_sdk.providers import (
    BuildRequest,
    BuildResult,
    CancelledFn,
    LogFn,
    ProviderError,
)
from gakwaya_sdk.sources import RuleError, confine

CAPABILITY = "builder:dockerfile"
PLUGIN = "gakwaya-dockerfile"

#: The plugin's settings for an organization (``panel.settings`` in production).
SettingsFn = Callable[[int | None], Mapping[str, Any]]

#: Largest CA bundle accepted (the host's full bundle is about 200 kB).
MAX_BUNDLE_BYTES = 5 * 1024 * 1024
#: How long the calling thread waits for output before polling ``cancelled()`` again.
POLL_SECONDS = 0.2
#: After a cancellation, how long the engine gets to remove a step's container itself
#: before we force it.
CLEANUP_SECONDS = 20.0

# Colour and cursor sequences (CSI, OSC, and two-character escapes), then any other
# control character but tab.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_RUNNING_IN = re.compile(r"^\s*---> Running in ([0-9a-f]{12,64})\s*$")
#: Printed by the engine once it has removed a step's container (only then).
_REMOVED = re.compile(r"^\s*Removing intermediate container ([0-9a-f]{12,64})\s*$")
_BUILT = re.compile(r"^Successfully built ([0-9a-f]{12,64})\s*$")


def clean_line(text: str) -> str:
    """A line as a user should read it: no colours, no control characters."""
    return _CONTROL.sub("", _ANSI.sub("", text)).rstrip()


class LineSplitter:
    """Turns the engine's output chunks (which split and join lines at will) into
    whole lines; a carriage return ends a line as a newline does."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._partial = ""

    def feed(self, text: str) -> None:
        parts = re.split(r"\r\n|\r|\n", self._partial + text)
        self._partial = parts.pop()
        for part in parts:
            self._line(part)

    def flush(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def _line(self, text: str) -> None:
        line = clean_line(text)
        if line:
            self._emit(line)


def _no_settings(org_id: int | None) -> Mapping[str, Any]:
    return {}


def _never() -> bool:
    return False


def engine_client(timeout: float | None = 60, version: str = "auto") -> docker.APIClient:
    """A low-level client for the engine ``DOCKER_HOST`` names (the default socket
    otherwise), speaking the engine's own API version (asked for unless ``version``
    is already known)."""
    try:
        return docker.APIClient(version=version, timeout=timeout, **docker.utils.kwargs_from_env())
    except docker.errors.DockerException as exc:
        raise ProviderError(f"the Docker engine cannot be reached: {exc}") from None


class _Stream(threading.Thread):
    """Sends the build and reads its output, handing each chunk to a queue.

    Every response this client receives is recorded (a ``requests`` session hook), so
    the calling thread can shut the connection down to cancel the build."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__(name="gakwaya-dockerfile-build", daemon=True)
        self.kwargs = kwargs
        self.chunks: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.responses: list[requests.Response] = []
        self.client: docker.APIClient | None = None
        #: The engine's API version, once the build's client has asked for it.
        self.api_version = "auto"

    def run(self) -> None:
        try:
            # No read timeout: a step may print nothing for a long time.
            self.client = engine_client(timeout=None)
            self.api_version = str(self.client.api_version)
            self.client.hooks["response"].append(self._record)
            for chunk in self.client.build(**self.kwargs):
                self.chunks.put(("chunk", chunk))
        except BaseException as exc:  # handed to the calling thread, which raises it
            self.chunks.put(("error", exc))
        finally:
            self.chunks.put(("end", None))
            if self.client is not None:
                self.client.close()

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.responses.append(response)

    def abort(self, wait: float) -> None:
        """Shut the build's connection down; the engine sees the client leave and
        cancels the build. Waits (up to ``wait`` seconds) for the request to have
        been answered, since before that there is no connection to shut."""
        deadline = time.monotonic() + wait
        while not self.responses and self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        for response in self.responses:
            _shutdown(response)
        self.join(timeout=wait)


def _shutdown(response: requests.Response) -> None:
    # close() alone does not wake a thread blocked reading the socket, nor tell the
    # engine: shutdown() does both.
    connection = getattr(response.raw, "connection", None) or getattr(
        response.raw, "_connection", None
    )
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        response.close()


class DockerfileBuilder:
    """Builds ``request.dockerfile`` in ``request.context_dir`` with the local engine."""

    capability = CAPABILITY

    def __init__(self, settings: SettingsFn = _no_settings) -> None:
        self._settings = settings

    # The protocol's method -----------------------------------------------------------

    def build(
        self, *, request: BuildRequest, log: LogFn, cancelled: CancelledFn = _never
    ) -> BuildResult:
        try:
            context = Path(request.context_dir).resolve(strict=True)
        except OSError:
            raise ProviderError(f"the source directory {request.context_dir} is missing") from None
        dockerfile = self._dockerfile(context, request.dockerfile)
        bundle = str(self._settings(request.org_id).get("extra_ca_bundle") or "")
        labels = dict(request.labels)
        inline = rewrite.labels_inline(labels)
        if bundle or (labels and inline):
            try:
                dockerfile = prepare(context, dockerfile, bundle, labels if inline else {})
            except OSError as exc:
                raise ProviderError(f"cannot prepare the build's Dockerfile: {exc}") from None
            if bundle:
                log(f"Adding the extra CA bundle {bundle} to every build stage")
            if inline:
                labels = {}
        if cancelled():
            raise ProviderError("cancelled")
        params = {
            "path": str(context),
            "dockerfile": dockerfile,
            "tag": request.image,
            "labels": labels,
            "buildargs": dict(request.build_args),
            "rm": True,
            "forcerm": True,
            "pull": False,
            "decode": True,
        }
        for attempt in range(1, BUILD_ATTEMPTS + 1):
            stream, outcome = self._run(params, request.image, log, cancelled)
            if not (outcome.error and vanished_cache(outcome.error)) or attempt == BUILD_ATTEMPTS:
                break
            # The classic builder reuses cached layers by id; removing another image
            # (an app's old release, a test's) prunes untagged parents that this build
            # was reusing. Nothing of this build is wrong: build it again.
            log("A cached layer was removed while the image was built; building again")
        if outcome.error:
            raise ProviderError(f"the image build failed: {outcome.error}")
        digest = self._digest(request.image, outcome, stream.api_version)
        return BuildResult(image=request.image, digest=digest)

    def _run(
        self, params: dict[str, Any], image: str, log: LogFn, cancelled: CancelledFn
    ) -> tuple[_Stream, _Outcome]:
        """One build through the engine: its log followed, its containers removed."""
        stream = _Stream(params)
        outcome = _Outcome()
        splitter = LineSplitter(lambda line: self._line(line, log, outcome))
        stream.start()
        try:
            self._follow(stream, splitter, log, cancelled, outcome)
        except BaseException:
            stream.abort(wait=CLEANUP_SECONDS)
            _remove_containers(outcome.containers)
            raise
        splitter.flush()
        if outcome.cancelled:
            stream.abort(wait=CLEANUP_SECONDS)
            _remove_containers(outcome.containers)
            _untag(image, outcome.image_id)
            log("Build cancelled")
            raise ProviderError("cancelled")
        _remove_containers(outcome.containers)
        return stream, outcome

    # Steps ---------------------------------------------------------------------------

    @staticmethod
    def _dockerfile(context: Path, dockerfile: str) -> str:
        """``dockerfile`` relative to the context, with every symlink resolved: checked
        again here because a provider must not trust that the kernel did."""
        try:
            path = confine(context, dockerfile)
        except RuleError as exc:
            raise ProviderError(f"dockerfile {dockerfile!r}: {exc}") from None
        if not path.is_file():
            raise ProviderError(f"dockerfile {dockerfile!r}: no such file in the source")
        return path.relative_to(context).as_posix()

    @staticmethod
    def _follow(
        stream: _Stream,
        splitter: LineSplitter,
        log: LogFn,
        cancelled: CancelledFn,
        outcome: _Outcome,
    ) -> None:
        while True:
            if cancelled():
                outcome.cancelled = True
                return
            try:
                kind, item = stream.chunks.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if kind == "end":
                return
            if kind == "error":
                if isinstance(item, docker.errors.APIError):
                    outcome.error = str(item.explanation or item)
                elif isinstance(item, docker.errors.DockerException | requests.RequestException):
                    outcome.error = f"the Docker engine stopped answering: {item}"
                else:
                    raise item
                continue
            _chunk(item, splitter, outcome)

    @staticmethod
    def _line(line: str, log: LogFn, outcome: _Outcome) -> None:
        running = _RUNNING_IN.match(line)
        if running:
            outcome.containers.append(running.group(1))
        removed = _REMOVED.match(line)
        if removed:
            # Gone already: nothing to wait for after the build.
            with contextlib.suppress(ValueError):
                outcome.containers.remove(removed.group(1))
        built = _BUILT.match(line)
        if built and not outcome.image_id:
            outcome.image_id = built.group(1)
        log(line)

    @staticmethod
    def _digest(tag: str, outcome: _Outcome, api_version: str = "auto") -> str:
        """The image id: the engine's own answer (``aux``) when it gave one, checked
        against what the tag names now."""
        client = engine_client(version=api_version)
        try:
            image_id = str(client.inspect_image(tag)["Id"])
        except docker.errors.DockerException as exc:
            raise ProviderError(f"the image {tag} was built but cannot be found: {exc}") from None
        finally:
            client.close()
        if outcome.image_id and outcome.image_id.startswith("sha256:"):
            return outcome.image_id
        return image_id


#: Builds tried when a cached layer vanishes mid-build (see :func:`vanished_cache`).
BUILD_ATTEMPTS = 3
_VANISHED = re.compile(
    r"unknown parent image ID|failed to set parent|No such image: sha256:|"
    r"layer does not exist|failed to get layer"
)


def vanished_cache(error: str) -> bool:
    """Whether a build failed because a layer it reused from the cache was deleted
    meanwhile (the engine's words for it), which building again resolves."""
    return bool(_VANISHED.search(error))


class _Outcome:
    def __init__(self) -> None:
        self.image_id = ""
        self.error = ""
        self.cancelled = False
        #: Intermediate containers the engine announced ("Running in …").
        self.containers: list[str] = []


def _chunk(chunk: Any, splitter: LineSplitter, outcome: _Outcome) -> None:
    if not isinstance(chunk, dict):
        return
    if isinstance(chunk.get("stream"), str):
        splitter.feed(chunk["stream"])
    if isinstance(chunk.get("status"), str):
        splitter.feed(" ".join(str(chunk[k]) for k in ("status", "progress") if chunk.get(k)))
        splitter.feed("\n")
    aux = chunk.get("aux")
    if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
        outcome.image_id = aux["ID"]
    if "error" in chunk or "errorDetail" in chunk:
        detail = chunk.get("errorDetail")
        message = chunk.get("error") or (detail.get("message") if isinstance(detail, dict) else "")
        splitter.flush()
        outcome.error = clean_line(str(message or "unknown error")) or "unknown error"
        splitter.feed(f"ERROR: {outcome.error}\n")


def _remove_containers(ids: list[str]) -> None:
    """Wait for the engine to remove the build's containers, then force what is left.

    ``forcerm`` and the engine's cancellation remove them, but asynchronously: a
    deployment retried at once must not meet a leftover."""
    if not ids:
        return
    client = engine_client()
    try:
        deadline = time.monotonic() + CLEANUP_SECONDS
        remaining = list(ids)
        while remaining and time.monotonic() < deadline:
            remaining = [cid for cid in remaining if _container_exists(client, cid)]
            if remaining:
                time.sleep(0.2)
        for cid in remaining:
            with contextlib.suppress(docker.errors.NotFound):
                client.remove_container(cid, force=True)
    finally:
        client.close()


def _container_exists(client: docker.APIClient, cid: str) -> bool:
    try:
        client.inspect_container(cid)
    except docker.errors.NotFound:
        return False
    return True


def _untag(tag: str, image_id: str) -> None:
    """A build cancelled after it finished: take back the tag it set."""
    if not image_id:
        return
    client = engine_client()
    try:
        with contextlib.suppress(docker.errors.NotFound):  # no such tag: nothing to undo
            current = str(client.inspect_image(tag)["Id"])
            if current == image_id or current.removeprefix("sha256:").startswith(image_id):
                client.remove_image(tag)
    finally:
        client.close()


# The extra CA bundle -----------------------------------------------------------------


def read_bundle(path: str) -> bytes:
    """The PEM file the ``extra_ca_bundle`` setting names, checked.

    The value comes from an operator's setting: it must be an absolute path to a
    regular file holding at least one certificate; it is only ever read."""
    where = f"setting extra_ca_bundle ({path!r})"
    if not os.path.isabs(path) or "\x00" in path:
        raise ProviderError(f"{where}: must be an absolute path to a PEM file")
    try:
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ProviderError(f"{where}: not a regular file")
            data = handle.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise ProviderError(f"{where}: cannot be read: {exc.strerror}") from None
    if len(data) > MAX_BUNDLE_BYTES:
        raise ProviderError(f"{where}: larger than {MAX_BUNDLE_BYTES} bytes")
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ProviderError(f"{where}: holds no PEM certificate")
    return data


def prepare_extra_ca(context: Path, dockerfile: str, bundle: str) -> str:
    """:func:`prepare` with the CA bundle only."""
    return prepare(context, dockerfile, bundle, {})


def prepare(context: Path, dockerfile: str, bundle: str, labels: dict[str, str]) -> str:
    """Write the rewritten Dockerfile (the CA bundle injected when ``bundle`` is set,
    ``labels`` as one final ``LABEL``) and the bundle into ``context/.gakwaya/``;
    return the rewritten Dockerfile's path, relative to ``context``.

    Whatever the repository had at ``.gakwaya`` is removed first, without following
    it: a symlink there must not make us write outside the checkout."""
    data = read_bundle(bundle) if bundle else b""
    source = (context / dockerfile).read_text(encoding="utf-8", errors="surrogateescape")
    text = rewrite.append_labels(rewrite.inject_ca(source) if bundle else source, labels)
    target = context / rewrite.CONTEXT_DIR
    _remove_entry(target)
    target.mkdir(mode=0o755)
    if bundle:
        _write_new(context / rewrite.CONTEXT_BUNDLE, data)
    _write_new(context / rewrite.CONTEXT_DOCKERFILE, text.encode("utf-8", errors="surrogateescape"))
    ignore = context / ".dockerignore"
    if ignore.is_symlink():
        # We never write through a link (it may lead anywhere).
        raise ProviderError(".dockerignore is a symbolic link; make it a regular file")
    if ignore.exists():
        text = ignore.read_text(encoding="utf-8", errors="surrogateescape")
        ignore.write_text(rewrite.keep_in_context(text), encoding="utf-8", errors="surrogateescape")
    return rewrite.CONTEXT_DOCKERFILE


def _remove_entry(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)
    else:
        path.unlink()


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o644)  # whatever the umask: non-root build steps read it

"""Real git servers on loopback for tests: no mocks, no network.

- :func:`bare_repo`: a bare repository whose one commit is a directory tree (symlinks
  kept as symlinks, so a test can commit one that points outside the checkout).
- :func:`make_ca` (from :mod:`gakwaya.testing.tls`): a certificate authority and a
  server certificate for 127.0.0.1.
- :func:`https_git_server`: a TLS HTTP server running ``git http-backend`` as a CGI
  program behind Basic auth (one accepted user and token pair or several). Paths:
  ``/v2/<repo>`` serves normally (protocol v2); ``/stall/<repo>`` never answers the
  pack request, which is a fetch stuck mid-way (for cancellation tests).
- :func:`sshd_server`: OpenSSH's server on a free loopback port with its own host key
  and ``authorized_keys``, serving the repositories to root by absolute path. It
  does not accept ``GIT_PROTOCOL``, so git speaks protocol v0 there and, like many
  servers, refuses to send a commit by id unless a ref points at it.

The git provider's own tests and the pipeline's tests use the same servers. Every
process gets an argument list; git runs with no system or global configuration.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gakwaya.testing.ports import free_port
from gakwaya.testing.tls import CA, make_ca

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
SSHD_PROGRAM = "/usr/sbin/sshd"
#: The user name git hosts expect with an access token (GitHub's convention).
TOKEN_USER = "x-access-token"  # noqa: S105 - a user name, not a secret


# git for a test's own setup -------------------------------------------------------------


def git_env() -> dict[str, str]:
    """The environment of a test's own git: no user configuration, a fixed author."""
    return {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Ada Tester",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada Tester",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }


def git(*args: str, cwd: Path | str | None = None) -> str:
    """Run git for a test's setup or checks (never the code under test); its output."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=git_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"git {args}: {done.stderr}")
    return done.stdout.strip()


def basic(user: str, token: str) -> str:
    """The ``Authorization`` header value of Basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


# Repositories ----------------------------------------------------------------------------


def commit_tree(work: Path, tree: Path | None = None, *, message: str = "a commit") -> str:
    """Replace the work tree of repository ``work`` with ``tree``'s files (when given),
    commit everything, and return the commit id."""
    if tree is not None:
        for child in work.iterdir():
            if child.name == ".git":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        shutil.copytree(tree, work, symlinks=True, dirs_exist_ok=True)
    git("add", "--all", "--", ".", cwd=work)
    git("commit", "--quiet", "--allow-empty", "-m", message, cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def bare_repo(
    tree: Path, dest: Path, *, branch: str = "main", message: str = "initial commit"
) -> str:
    """A bare repository at ``dest`` whose branch ``branch`` has one commit of
    ``tree``; the commit id. Its work copy is kept beside it (``dest`` + ``.work``),
    so :func:`push_tree` can add commits."""
    work = dest.with_name(dest.name + ".work")
    git("init", "--quiet", f"--initial-branch={branch}", "--", str(work))
    commit = commit_tree(work, tree, message=message)
    git("clone", "--quiet", "--bare", "--", str(work), str(dest))
    return commit


def push_tree(dest: Path, tree: Path, *, branch: str = "main", message: str = "a commit") -> str:
    """Commit ``tree`` on top of ``branch`` of the bare repository :func:`bare_repo`
    made at ``dest``; the new commit id."""
    work = dest.with_name(dest.name + ".work")
    commit = commit_tree(work, tree, message=message)
    git("push", "--quiet", "--", str(dest), f"HEAD:refs/heads/{branch}", cwd=work)
    return commit


# HTTPS -----------------------------------------------------------------------------------


class GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, accepted: Iterable[str]) -> None:
        super().__init__(("127.0.0.1", 0), GitHTTPHandler)
        self.root = root
        #: ``Authorization`` header values let in.
        self.accepted = set(accepted)
        #: (method, path, Authorization header) of every request, in order.
        self.requests: list[tuple[str, str, str]] = []
        #: Connections accepted (a client keeping its connection alive makes one).
        self.connections = 0
        self._connections_lock = threading.Lock()
        #: Set when a /stall/ pack request arrives; the handler then waits for release.
        self.stalled = threading.Event()
        self.release = threading.Event()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self.connections += 1
        super().process_request(request, client_address)


class GitHTTPHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as git hosts speak it: git reuses one TLS connection
    for the requests of a fetch (three with protocol v2) instead of a handshake each.
    Every answer has a ``Content-Length``, and Nagle's algorithm is off, so an answer's
    last bytes are not held back waiting for the client's delayed ACK."""

    server: GitHTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        """Silent: tests read ``server.requests`` instead of stderr."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        auth = self.headers.get("Authorization", "")
        self.server.requests.append((self.command, self.path, auth))
        if auth not in self.server.accepted:
            # The request's body is left unread: the connection cannot carry another.
            self.close_connection = True
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        _, mode, rest = path.split("/", 2)
        body = self._body() if self.command == "POST" else b""
        if mode == "stall" and self.command == "POST":
            self.server.stalled.set()
            self.server.release.wait(timeout=120)
            self.close_connection = True
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": "/" + rest,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "tester",
            "REMOTE_ADDR": "127.0.0.1",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if mode in ("v2", "stall") and self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        done = subprocess.run([HTTP_BACKEND], input=body, env=env, capture_output=True, check=False)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name.lower() in ("content-length", "transfer-encoding", "connection"):
                continue  # this server frames the answer itself (below)
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@dataclass
class HTTPS:
    server: GitHTTPServer
    port: int

    def url(self, repo: str = "app.git", mode: str = "v2") -> str:
        return f"https://127.0.0.1:{self.port}/{mode}/{repo}"


@contextmanager
def https_git_server(
    root: Path, ca: CA, tokens: Mapping[str, str], *, anonymous: bool = False
) -> Iterator[HTTPS]:
    """Serve the bare repositories under ``root`` over HTTPS (certificate of ``ca``) to
    Basic auth with any ``{user: token}`` pair of ``tokens``, and with ``anonymous`` to
    requests without credentials too (a public repository)."""
    accepted = [basic(user, token) for user, token in tokens.items()]
    server = GitHTTPServer(root, [*accepted, ""] if anonymous else accepted)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(ca.server_cert), str(ca.server_key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HTTPS(server=server, port=server.server_address[1])
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


# SSH -------------------------------------------------------------------------------------


@dataclass
class KeyPair:
    private: str
    public: str


def make_key(directory: Path, name: str) -> KeyPair:
    """A new ed25519 key pair (no passphrase) written to ``directory/name[.pub]``."""
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return KeyPair(private=path.read_text(), public=(directory / f"{name}.pub").read_text())


@dataclass
class SSHD:
    port: int
    #: known_hosts line of the server's host key, as ssh writes it for this port
    known_hosts_line: str
    root: Path

    def url(self, repo: str = "app.git") -> str:
        return f"ssh://root@127.0.0.1:{self.port}{self.root / repo}"


@contextmanager
def sshd_server(root: Path, directory: Path, authorized: Iterable[KeyPair]) -> Iterator[SSHD]:
    """OpenSSH's ``sshd`` on loopback letting in root with the ``authorized`` keys;
    ``directory`` (made private) holds its host key and configuration. Needs root
    (and Debian's openssh-server, installed here when missing)."""
    if not os.path.exists(SSHD_PROGRAM):
        subprocess.run(["apt-get", "install", "-y", "-q", "openssh-server"], check=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    host = make_key(directory, "host_key")
    keys_file = directory / "authorized_keys"
    keys_file.write_text("".join(key.public for key in authorized))
    os.chmod(keys_file, 0o600)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {directory / 'host_key'}",
                f"PidFile {directory / 'sshd.pid'}",
                f"AuthorizedKeysFile {keys_file}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    proc = subprocess.Popen(
        [SSHD_PROGRAM, "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {proc.stderr.read() if proc.stderr else ''!r}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("sshd did not start listening") from None
                time.sleep(0.05)
        key_type, key_body = host.public.split()[:2]
        yield SSHD(
            port=port, known_hosts_line=f"[127.0.0.1]:{port} {key_type} {key_body}", root=root
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


__all__ = [
    "CA",
    "HTTPS",
    "SSHD",
    "TOKEN_USER",
    "GitHTTPServer",
    "KeyPair",
    "bare_repo",
    "basic",
    "commit_tree",
    "free_port",
    "git",
    "git_env",
    "https_git_server",
    "make_ca",
    "make_key",
    "push_tree",
    "sshd_server",
]

"""gakwaya-portproxy on real sockets on 127.0.0.1: upstreams are small HTTP servers
in threads answering their own name, the proxy a real listener, another process a real
subprocess."""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gakwaya.testing.ports import free_port
from gakwaya_portproxy.forwarder import PortProxyService
from gakwaya_portproxy.plugin import PortProxy
from gakwaya_portproxy.routes import check_bind_address
from gakwaya_sdk.providers import ProviderError, Route

DEADLINE = 30.0


class Upstream:
    """An HTTP server in a thread whose every answer is its own name."""

    def __init__(self, name: str) -> None:
        self.name = name
        body = name.encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads what it needs from the requests."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def dead_address() -> str:
    """A loopback port nothing listens on (connections are refused)."""
    return f"127.0.0.1:{free_port()}"


def get(port: int, timeout: float = 10) -> str:
    """One request on a new connection: what answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        response = conn.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        conn.close()


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


def answer_or_error(port: int) -> str:
    try:
        return get(port, timeout=5)
    except (OSError, http.client.HTTPException) as exc:
        return f"error: {exc!r}"


def wait_for(check: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def upstreams() -> Iterator[Callable[[str], Upstream]]:
    started: list[Upstream] = []

    def make(name: str) -> Upstream:
        upstream = Upstream(name)
        started.append(upstream)
        return upstream

    yield make
    for upstream in started:
        upstream.stop()


@pytest.fixture
def proxy_dir(tmp_path: Path) -> Path:
    path = tmp_path / "portproxy"
    path.mkdir()
    return path


@pytest.fixture
def proxy(proxy_dir: Path) -> PortProxy:
    return PortProxy(directory=proxy_dir, bind_address="127.0.0.1")


@pytest.fixture
def make_service(proxy_dir: Path) -> Iterator[Callable[..., PortProxyService]]:
    started: list[PortProxyService] = []

    def make(**kwargs: Any) -> PortProxyService:
        kwargs.setdefault("routes_file", proxy_dir / "routes.json")
        kwargs.setdefault("bind_address", "127.0.0.1")
        kwargs.setdefault("poll_interval", 0.1)
        service = PortProxyService(**kwargs)
        service.start()
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()


@pytest.fixture
def service(make_service: Callable[..., PortProxyService]) -> PortProxyService:
    return make_service()


def route(app: str, port: int, *upstreams: str) -> Route:
    return Route(app=app, port=port, upstreams=list(upstreams))


# Forwarding ---------------------------------------------------------------------------


def test_forwards_to_the_upstream(
    proxy: PortProxy, service: PortProxyService, upstreams: Callable[[str], Upstream]
) -> None:
    blue = upstreams("blue")
    port = free_port()
    proxy.apply(routes=[route("a1", port, blue.address)])
    # apply in the serving process pushes to its forwarder: served on return.
    assert get(port) == "blue"
    assert service.listening() == {port: "a1"}
    assert proxy.routes() == [route("a1", port, blue.address)]


def test_round_robin_over_upstreams(
    proxy: PortProxy, service: PortProxyService, upstreams: Callable[[str], Upstream]
) -> None:
    one, two = upstreams("one"), upstreams("two")
    port = free_port()
    proxy.apply(routes=[route("a1", port, one.address, two.address)])
    answers = [get(port) for _ in range(6)]
    assert sorted(set(answers)) == ["one", "two"]
    assert answers.count("one") == answers.count("two") == 3


def test_routes_without_a_port_are_left_to_other_proxies(
    proxy: PortProxy, service: PortProxyService, upstreams: Callable[[str], Upstream]
) -> None:
    blue = upstreams("blue")
    port = free_port()
    proxy.apply(
        routes=[
            Route(app="web", domain="example.com", upstreams=[blue.address]),
            route("a1", port, blue.address),
        ]
    )
    assert [r.app for r in proxy.routes()] == ["a1"]
    assert get(port) == "blue"


def test_switching_upstreams_under_load_drops_nothing(
    proxy: PortProxy, service: PortProxyService, upstreams: Callable[[str], Upstream]
) -> None:
    blue, green = upstreams("blue"), upstreams("green")
    port = free_port()
    proxy.apply(routes=[route("a1", port, blue.address)])
    switched = threading.Event()
    stop = threading.Event()
    # (switch had happened when the request started, answer)
    results: list[tuple[bool, str]] = []

    def client() -> None:
        while not stop.is_set():
            after = switched.is_set()
            results.append((after, answer_or_error(port)))

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    wait_for(lambda: len(results) >= 20, "requests before the switch")
    proxy.apply(routes=[route("a1", port, green.address)])
    switched.set()
    count = len(results)
    wait_for(lambda: len(results) >= count + 20, "requests after the switch")
    stop.set()
    thread.join(timeout=DEADLINE)
    errors = [answer for _, answer in results if answer not in ("blue", "green")]
    assert not errors, errors[:3]
    assert {answer for after, answer in results if after} == {"green"}
    assert {answer for after, answer in results[:20]} == {"blue"}


def test_open_connections_drain_on_the_old_upstream(
    proxy: PortProxy, service: PortProxyService, upstreams: Callable[[str], Upstream]
) -> None:
    blue, green = upstreams("blue"), upstreams("green")
    port = free_port()
    proxy.apply(routes=[route("a1", port, blue.address)])
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # keep-alive
    try:
        kept.request("GET", "/")
        assert kept.getresponse().read() == b"blue"
        proxy.apply(routes=[route("a1", port, green.address)])
        assert get(port) == "green"
        kept.request("GET", "/")
        assert kept.getresponse().read() == b"blue"
    finally:
        kept.close()


def test_a_dead_upstream_is_skipped(
    proxy: PortProxy, service: PortProxyService, upstreams: Callable[[str], Upstream]
) -> None:
    blue = upstreams("blue")
    port = free_port()
    proxy.apply(routes=[route("a1", port, dead_address(), blue.address, dead_address())])
    assert [get(port) for _ in range(6)] == ["blue"] * 6


def test_no_upstream_answering_closes_the_client(
    proxy: PortProxy, service: PortProxyService
) -> None:
    port = free_port()
    proxy.apply(routes=[route("a1", port, dead_address()), route("a2", free_port())])
    for p in (port, proxy.routes()[1].port):
        assert p is not None
        with socket.create_connection(("127.0.0.1", p), timeout=10) as conn:
            conn.settimeout(10)
            with contextlib.suppress(ConnectionResetError):  # closed, or reset: not served
                assert conn.recv(100) == b""


def test_a_removed_route_closes_its_port(
    proxy: PortProxy, service: PortProxyService, upstreams: Callable[[str], Upstream]
) -> None:
    blue = upstreams("blue")
    kept_port, removed_port = free_port(), free_port()
    proxy.apply(
        routes=[route("a1", kept_port, blue.address), route("a2", removed_port, blue.address)]
    )
    assert get(removed_port) == "blue"
    proxy.apply(routes=[route("a1", kept_port, blue.address)])
    wait_for(lambda: refused(removed_port), "the removed port to close")
    assert get(kept_port) == "blue"
    assert service.listening() == {kept_port: "a1"}
    proxy.apply(routes=[])
    wait_for(lambda: refused(kept_port), "the last port to close")
    assert proxy.routes() == []


def test_a_kept_port_accepts_across_many_applies(
    proxy: PortProxy, service: PortProxyService, upstreams: Callable[[str], Upstream]
) -> None:
    blue, green = upstreams("blue"), upstreams("green")
    port, other = free_port(), free_port()
    proxy.apply(routes=[route("a1", port, blue.address)])
    stop = threading.Event()
    results: list[str] = []

    def client() -> None:
        while not stop.is_set():
            results.append(answer_or_error(port))

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    for i in range(40):
        current = (blue, green)[i % 2]
        routes = [route("a1", port, current.address)]
        if i % 3 == 0:
            routes.append(route("a2", other, green.address))
        proxy.apply(routes=routes)
        time.sleep(0.01)
    count = len(results)
    wait_for(lambda: len(results) >= count + 5, "requests after the last apply")
    stop.set()
    thread.join(timeout=DEADLINE)
    assert len(results) > 5
    errors = [answer for answer in results if answer not in ("blue", "green")]
    assert not errors, errors[:3]


# Other processes and restarts ---------------------------------------------------------

APPLY_IN_ANOTHER_PROCESS = """
import sys
from pathlib import Path
from gakwaya_portproxy.plugin import PortProxy
from gakwaya_sdk.providers import Route
proxy = PortProxy(directory=Path(sys.argv[1]), bind_address="127.0.0.1")
proxy.apply(routes=[Route(app="a1", port=int(sys.argv[2]), upstreams=[sys.argv[3]])])
"""


def test_another_process_apply_is_picked_up(
    proxy_dir: Path,
    proxy: PortProxy,
    service: PortProxyService,
    upstreams: Callable[[str], Upstream],
) -> None:
    blue, green = upstreams("blue"), upstreams("green")
    port = free_port()
    proxy.apply(routes=[route("a1", port, blue.address)])
    assert get(port) == "blue"
    subprocess.run(
        [sys.executable, "-c", APPLY_IN_ANOTHER_PROCESS, str(proxy_dir), str(port), green.address],
        check=True,
        timeout=60,
    )
    wait_for(lambda: answer_or_error(port) == "green", "the other process's routes")
    assert [get(port) for _ in range(3)] == ["green"] * 3


def test_another_instance_apply_is_picked_up_by_polling(
    proxy_dir: Path, service: PortProxyService, upstreams: Callable[[str], Upstream]
) -> None:
    # A provider on another directory object, as in a worker: no push, only the file.
    blue = upstreams("blue")
    port = free_port()
    other = PortProxy(directory=lambda: proxy_dir, bind_address="127.0.0.1")
    other.apply(routes=[route("a1", port, blue.address)])
    wait_for(lambda: answer_or_error(port) == "blue", "the polled routes")


def test_a_restarted_service_serves_the_file_again(
    proxy: PortProxy,
    make_service: Callable[..., PortProxyService],
    upstreams: Callable[[str], Upstream],
) -> None:
    blue = upstreams("blue")
    port = free_port()
    first = make_service()
    proxy.apply(routes=[route("a1", port, blue.address)])
    assert get(port) == "blue"
    first.stop()
    wait_for(lambda: refused(port), "the stopped service's port to close")
    make_service()
    # start() returns once the file's routes are listened on.
    assert get(port) == "blue"


def test_two_serving_processes_share_a_port(
    proxy: PortProxy,
    make_service: Callable[..., PortProxyService],
    upstreams: Callable[[str], Upstream],
) -> None:
    blue = upstreams("blue")
    port = free_port()
    first, second = make_service(), make_service()
    proxy.apply(routes=[route("a1", port, blue.address)])
    assert first.listening() == second.listening() == {port: "a1"}
    first.stop()
    assert [get(port) for _ in range(5)] == ["blue"] * 5


# Bad input ------------------------------------------------------------------------------

BAD_ROUTES = [
    ([Route(app="a1", port=80, upstreams=["127.0.0.1:8080"])], "between 1024 and 65535"),
    ([Route(app="a1", port=70000, upstreams=["127.0.0.1:8080"])], "between 1024 and 65535"),
    ([Route(app="a1", port=True, upstreams=["127.0.0.1:8080"])], "between 1024 and 65535"),
    ([Route(app="a1", port="8080", upstreams=["127.0.0.1:8080"])], "integer"),  # type: ignore[arg-type]
    ([Route(app="a;1", port=18080, upstreams=["127.0.0.1:8080"])], "app must be"),
    ([Route(app="-a", port=18080, upstreams=["127.0.0.1:8080"])], "app must be"),
    ([Route(app="a1", port=18080, upstreams="127.0.0.1:8080")], "list"),
    ([Route(app="a1", port=18080, upstreams=[8080])], "string"),  # type: ignore[list-item]
    *[
        ([Route(app="a1", port=18080, upstreams=[bad])], "host:port")
        for bad in (
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:080",
            "127.0.0.1:99999",
            "host;touch /tmp/x:80",
            "$(touch /tmp/x):80",
            "`id`:80",
            "../etc:80",
            "-x:80",
            "host\n:80",
            "host:80\n",
            " host:80",
            "[::1]:80",
            "::1:80",
            "user@host:80",
            "http://host:80",
            "host:80/path",
            "a..b:80",
            "-host.example:80",
        )
    ],
    ([Route(app="a1", port=18080, upstreams=["999.0.0.1:80"])], "not an IPv4 address"),
    ([Route(app="a1", port=18080, upstreams=["1.2.3:80"])], "not an IPv4 address"),
    (
        [
            Route(app="a1", port=18080, upstreams=["127.0.0.1:8080"]),
            Route(app="a2", port=18080, upstreams=["127.0.0.1:8081"]),
        ],
        "already routed to app 'a1'",
    ),
    (["not a route"], "not a gakwaya_sdk.providers.Route"),
]


@pytest.mark.parametrize(("routes", "rule"), BAD_ROUTES)
def test_bad_routes_are_refused_and_nothing_is_written(
    proxy: PortProxy,
    service: PortProxyService,
    upstreams: Callable[[str], Upstream],
    routes: list[Route],
    rule: str,
) -> None:
    blue = upstreams("blue")
    port = free_port()
    proxy.apply(routes=[route("a0", port, blue.address)])
    before = proxy.routes_file.read_bytes()
    with pytest.raises(ProviderError, match=re.escape(rule)) as info:
        proxy.apply(routes=[route("a0", port, blue.address), *routes])
    if isinstance(routes[0], Route) and rule != "already routed to app 'a1'":
        assert repr(routes[0].app) in str(info.value)  # names the route
    assert proxy.routes_file.read_bytes() == before
    assert [p.name for p in proxy.routes_file.parent.iterdir()] == ["routes.json"]
    assert get(port) == "blue"


def test_a_port_another_program_holds_is_refused(
    proxy: PortProxy, service: PortProxyService
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(ProviderError, match=rf"route of app 'a1': port {taken} .*cannot"):
            proxy.apply(routes=[route("a1", taken, "127.0.0.1:8080")])
    assert not proxy.routes_file.exists()


def test_a_broken_file_keeps_the_current_routes(
    proxy: PortProxy, service: PortProxyService, upstreams: Callable[[str], Upstream]
) -> None:
    blue = upstreams("blue")
    port = free_port()
    proxy.apply(routes=[route("a1", port, blue.address)])
    proxy.routes_file.write_text('{"version": 1, "routes": [{"app": "a1", "port": 80}]}')
    service.reload()
    assert get(port) == "blue"
    with pytest.raises(ProviderError, match="exactly app, port and upstreams"):
        proxy.routes()


@pytest.mark.parametrize("good", ["0.0.0.0", "127.0.0.1", "::", "::1", "10.1.2.3"])  # noqa: S104
def test_bind_address_accepts_ip_addresses(good: str) -> None:
    assert check_bind_address(good) == str(ipaddress.ip_address(good))


@pytest.mark.parametrize(
    "bad", ["", "localhost", "0.0.0.0;id", "0.0.0.0 ", "256.0.0.1", "-1", "$(id)", 1234, None]
)
def test_bind_address_refuses_anything_else(
    bad: object, proxy_dir: Path, upstreams: Callable[[str], Upstream]
) -> None:
    with pytest.raises(ProviderError, match=r"setting bind_address: .* must be an IP address"):
        check_bind_address(bad)
    service = PortProxyService(routes_file=proxy_dir / "routes.json", bind_address=lambda: bad)
    with pytest.raises(ProviderError, match="bind_address"):
        service.start()
    proxy = PortProxy(directory=proxy_dir, bind_address=lambda: bad)
    with pytest.raises(ProviderError, match="bind_address"):
        proxy.apply(routes=[route("a1", free_port(), upstreams("blue").address)])
    assert not (proxy_dir / "routes.json").exists()


# In the panel ---------------------------------------------------------------------------

SETTINGS = "/api/v1/plugins/gakwaya-portproxy/settings"


def test_served_by_the_panel_lifecycle(
    gakwaya_kernel: Any,
    gakwaya_settings: Any,
    gakwaya_app: Any,
    gakwaya_panel: Any,
    upstreams: Callable[[str], Upstream],
) -> None:
    from litestar.testing import TestClient

    from gakwaya.app import create_app
    from gakwaya.kernel import Kernel

    status = gakwaya_kernel.plugins.statuses["gakwaya-portproxy"]
    assert status.status == "active", status.reason
    assert {"register_providers", "register_services"} <= set(status.hooks)
    provider = gakwaya_panel.provider("proxy:ports")
    assert isinstance(provider, PortProxy)
    assert provider.routes_file == gakwaya_panel.data_dir("gakwaya-portproxy") / "routes.json"
    blue = upstreams("blue")
    port = free_port()
    with TestClient(gakwaya_app) as client:
        assert client.get("/healthz").status_code == 200
        provider.apply(routes=[route("a1", port, blue.address)])
        assert get(port) == "blue"  # the default bind_address, 0.0.0.0, takes loopback too
    # The panel stopped: its service with it.
    wait_for(lambda: refused(port), "the port to close at shutdown")
    assert provider.routes() == [route("a1", port, blue.address)]

    # A restarted panel (a new kernel on the same settings) serves the file again.
    restarted = Kernel.create(gakwaya_settings)
    try:
        with TestClient(create_app(restarted)):
            assert get(port) == "blue"
    finally:
        restarted.close()
    wait_for(lambda: refused(port), "the port to close at the second shutdown")


def test_a_worker_or_cli_kernel_does_not_forward(
    gakwaya_kernel: Any, gakwaya_panel: Any, upstreams: Callable[[str], Upstream]
) -> None:
    # What `gakwaya worker` runs: the kernel's background work, no plugin service.
    port = free_port()
    gakwaya_panel.provider("proxy:ports").apply(
        routes=[route("a1", port, upstreams("blue").address)]
    )
    gakwaya_kernel.start_background()
    try:
        time.sleep(0.3)
        assert refused(port)
    finally:
        gakwaya_kernel.stop_background()


def test_a_bad_bind_address_degrades_only_this_plugin(
    gakwaya_client: Any, gakwaya_superuser: Any, gakwaya_settings: Any
) -> None:
    from litestar.testing import TestClient

    from gakwaya.app import create_app
    from gakwaya.kernel import Kernel

    r = gakwaya_client.put(
        SETTINGS, json={"values": {"bind_address": "0.0.0.0;id"}}, headers=gakwaya_superuser.session
    )
    assert r.status_code == 200, r.text
    restarted = Kernel.create(gakwaya_settings)
    try:
        with TestClient(create_app(restarted)) as client:
            status = restarted.plugins.statuses["gakwaya-portproxy"]
            assert status.status == "degraded"
            assert "service 'portproxy' failed to start" in status.reason
            assert "setting bind_address: '0.0.0.0;id' must be an IP address" in status.reason
            assert client.get("/healthz").status_code == 200
            provider = restarted.plugins.provider("proxy:ports")
            with pytest.raises(ProviderError, match="bind_address"):
                provider.apply(routes=[route("a1", free_port(), "127.0.0.1:8080")])
    finally:
        restarted.close()

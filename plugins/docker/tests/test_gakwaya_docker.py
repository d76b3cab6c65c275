"""DockerRuntime against the real engine: starting, failing cleanly, isolation,
lifecycle, logs, statistics and images."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
import pytest

from gakwaya_docker.containers import NOBODY
from gakwaya_docker.plugin import register_providers
from gakwaya_docker.runtime import DockerRuntime
from gakwaya_sdk.providers import HealthCheck, Instance, ProviderError, check_provider

HTTP = HealthCheck(kind="http", path="/health", interval=0.2, timeout=2, retries=50)
TCP = HealthCheck(kind="tcp", interval=0.2, timeout=2, retries=50)
NAME = re.compile(r"gakwaya-(?P<app>[a-z0-9]+)-(?P<release>[a-z0-9]+)-[0-9a-f]{6}")


def get(address: str, path: str = "/") -> tuple[int, str]:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=5) as response:
        return response.status, response.read().decode()


def eventually(read: Callable[[], Any], expected: Any, timeout: float = 30.0) -> Any:
    """``read()`` once it equals ``expected`` (or its last value, for the assertion):
    the engine copies a container's output into its log a moment after it is printed,
    so a line the app printed before answering may not be readable yet."""
    deadline = time.monotonic() + timeout
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def inspect(session: Any, instance: Instance) -> dict[str, Any]:
    return dict(session.client.api.inspect_container(instance.id))


def app_containers(session: Any, app: str) -> list[Any]:
    return session.containers(**{"gakwaya.app": app})


# Starting ---------------------------------------------------------------------------


def test_start_http_health_replicas_and_labels(session, runtime, web_image, log):
    spec = session.spec(
        web_image, replicas=2, health=HTTP, labels={**session.labels, "gakwaya.deployment": "d9"}
    )
    instances = runtime.start(spec=spec, log=log)

    assert len(instances) == 2
    assert len({i.id for i in instances}) == 2
    for instance in instances:
        match = NAME.fullmatch(instance.name)
        assert match and match["app"] == spec.app and match["release"] == spec.release
        assert instance.state == "running"
        assert instance.app == spec.app and instance.release == spec.release
        assert instance.address.endswith(":8000")
        assert get(instance.address) == (200, "hello uid=65534")
        labels = inspect(session, instance)["Config"]["Labels"]
        assert labels["gakwaya.managed"] == "true"
        assert labels["gakwaya.app"] == spec.app
        assert labels["gakwaya.org"] == spec.org
        assert labels["gakwaya.release"] == spec.release
        assert labels["gakwaya.deployment"] == "d9"
        assert instance.labels["gakwaya.deployment"] == "d9"
        attrs = inspect(session, instance)
        assert "PORT=8000" in attrs["Config"]["Env"]
        assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"


def test_start_tcp_health(session, runtime, web_image, log):
    spec = session.spec(web_image, health=TCP, restart="on-failure", port=9000)
    [instance] = runtime.start(spec=spec, log=log)
    assert instance.address.endswith(":9000")
    assert get(instance.address)[0] == 200
    assert inspect(session, instance)["HostConfig"]["RestartPolicy"]["Name"] == "on-failure"


def test_start_without_health_check_needs_only_to_keep_running(session, runtime, web_image, log):
    spec = session.spec(web_image, health=HealthCheck(kind="none", interval=0.3))
    [instance] = runtime.start(spec=spec, log=log)
    assert instance.state == "running"


def test_unprivileged_limited_and_isolated_by_construction(session, runtime, web_image, log):
    spec = session.spec(web_image, health=TCP, cpu=0.5, memory_mb=96)
    [instance] = runtime.start(spec=spec, log=log)
    attrs = inspect(session, instance)
    host = attrs["HostConfig"]

    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == 96 * 1024 * 1024
    assert host["MemorySwap"] == 96 * 1024 * 1024
    assert host["PidsLimit"] and host["PidsLimit"] > 0
    assert host["Privileged"] is False
    assert host["CapDrop"] == ["ALL"]
    assert host["CapAdd"] == ["NET_BIND_SERVICE"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Init"] is True
    assert host["LogConfig"]["Type"] == "json-file"
    assert host["LogConfig"]["Config"]["max-size"]
    assert not host["PortBindings"]
    assert not host["Binds"] and not attrs["Mounts"]
    assert list(attrs["NetworkSettings"]["Networks"]) == [f"gakwaya-{spec.org}"]
    assert not attrs["NetworkSettings"]["Ports"] or all(
        not bound for bound in attrs["NetworkSettings"]["Ports"].values()
    )
    # No USER in the image: nobody.
    assert attrs["Config"]["User"] == NOBODY
    container = session.client.containers.get(instance.id)
    assert container.exec_run(["id", "-u"]).output.decode().strip() == "65534"

    network = session.client.networks.get(f"gakwaya-{spec.org}")
    assert network.attrs["Driver"] == "bridge"
    assert network.attrs["Labels"] == {"gakwaya.managed": "true", "gakwaya.org": spec.org}


def test_the_images_user_is_kept(session, runtime, user_image, root_image, log):
    [as_user] = runtime.start(spec=session.spec(user_image, health=TCP), log=log)
    assert inspect(session, as_user)["Config"]["User"] == "1000:1000"
    assert get(as_user.address) == (200, "hello uid=1000")

    # An image that says USER root gets root, and only the capabilities to drop it.
    [as_root] = runtime.start(spec=session.spec(root_image, health=TCP), log=log)
    attrs = inspect(session, as_root)
    assert attrs["Config"]["User"] == "root"
    assert sorted(attrs["HostConfig"]["CapAdd"]) == [
        "CHOWN",
        "NET_BIND_SERVICE",
        "SETGID",
        "SETUID",
    ]
    assert attrs["HostConfig"]["Privileged"] is False


def test_network_is_created_once_even_by_concurrent_starts(session, runtime):
    org = session.key("o")
    results: list[str] = []

    def ensure() -> None:
        results.append(runtime._ensure_network(runtime.engine.client(), org))

    threads = [threading.Thread(target=ensure) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # A second runtime (another process, in effect) finds the same network.
    other = DockerRuntime(network_pool="10.213.0.0/16")
    results.append(other._ensure_network(other.engine.client(), org))

    named = [n for n in session.client.networks.list(names=[f"gakwaya-{org}"])]
    named = [n for n in named if n.name == f"gakwaya-{org}"]
    assert len(named) == 1
    assert set(results) == {named[0].id}


def test_networks_take_distinct_subnets_of_the_pool(session, runtime):
    pool = ipaddress.ip_network("10.213.0.0/16")
    subnets = []
    for org in (session.key("o"), session.key("o")):
        network = session.client.networks.get(runtime._ensure_network(runtime.engine.client(), org))
        [config] = network.attrs["IPAM"]["Config"]
        subnet = ipaddress.ip_network(config["Subnet"])
        assert subnet.subnet_of(pool) and subnet.prefixlen == 24
        subnets.append(subnet)
    assert subnets[0] != subnets[1]

    for bad in ("10.0.0.1/16", "10.0.0.0/25", "fd00::/64", "10.0.0.0/8; rm", "x"):
        with pytest.raises(ProviderError, match="network_pool setting must be"):
            DockerRuntime(network_pool=bad)._ensure_network(
                runtime.engine.client(), session.key("o")
            )


# Failing cleanly --------------------------------------------------------------------


def test_crash_on_start_removes_the_new_instances_and_keeps_the_running_one(
    session, runtime, web_image, log
):
    spec = session.spec(web_image, health=TCP)
    [running] = runtime.start(spec=spec, log=log)

    crashing = session.spec(
        web_image,
        app=spec.app,
        org=spec.org,
        release=session.key("r"),
        replicas=2,
        env={"CRASH": "3"},
        health=TCP,
    )
    with pytest.raises(ProviderError, match="exited with code 3"):
        runtime.start(spec=crashing, log=log)

    assert any("boom: crashing on purpose" in line for line in log)
    left = app_containers(session, spec.app)
    assert [c.id for c in left] == [running.id]
    assert left[0].status == "running"
    assert get(running.address)[0] == 200


def test_health_never_passing_fails_with_the_reason_and_leaves_nothing(
    session, runtime, web_image, log
):
    spec = session.spec(
        web_image,
        env={"SICK": "1"},
        replicas=2,
        # Enough tries for the app to be listening (answering 500) at the last one.
        health=HealthCheck(kind="http", path="/health", interval=0.2, timeout=2, retries=25),
    )
    with pytest.raises(ProviderError, match=r"health check failed 25 times: .*HTTP 500"):
        runtime.start(spec=spec, log=log)
    assert app_containers(session, spec.app) == []
    assert any("listening on 8000" in line for line in log)


def test_nothing_listening_is_reported(session, runtime, web_image, log):
    spec = session.spec(
        web_image,
        port=8001,  # the app listens on $PORT, so make it listen elsewhere
        env={"PORT": "8002"},
        health=HealthCheck(kind="tcp", interval=0.1, timeout=1, retries=3),
    )
    with pytest.raises(ProviderError, match="health check failed 3 times: connection refused"):
        runtime.start(spec=spec, log=log)
    assert app_containers(session, spec.app) == []


def test_cancellation_stops_the_start_and_leaves_nothing(session, runtime, web_image, log):
    polls = 0

    def cancelled() -> bool:
        nonlocal polls
        polls += 1
        return polls > 5

    spec = session.spec(
        web_image,
        env={"SICK": "1"},
        health=HealthCheck(kind="http", path="/health", interval=0.1, retries=10_000),
    )
    with pytest.raises(ProviderError, match="cancelled"):
        runtime.start(spec=spec, log=log, cancelled=cancelled)
    assert app_containers(session, spec.app) == []


def test_missing_image_and_bad_keys_are_refused_before_anything_runs(session, runtime, web_image):
    missing = session.spec(f"{session.repository}:does-not-exist")
    with pytest.raises(ProviderError, match="not on the Docker engine"):
        runtime.start(spec=missing, log=print)
    assert app_containers(session, missing.app) == []

    for field, value in (("app", "a;rm"), ("org", "-o"), ("release", "../r")):
        with pytest.raises(ProviderError, match=f"{field} .* is not a valid key"):
            runtime.start(spec=session.spec(web_image, **{field: value}), log=print)
    with pytest.raises(ProviderError, match="restart must be one of"):
        runtime.start(spec=session.spec(web_image, restart="sometimes"), log=print)
    bad_path = HealthCheck(kind="http", path="/x\r\nHost: evil")
    with pytest.raises(ProviderError, match="health check path"):
        runtime.start(spec=session.spec(web_image, health=bad_path), log=print)


# Isolation --------------------------------------------------------------------------


CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()\n"
    "except OSError as exc:\n"
    "    print(exc); sys.exit(1)\n"
)


def test_organizations_cannot_reach_each_other(session, runtime, web_image, log):
    org1, org2 = session.key("o"), session.key("o")
    a, b = runtime.start(spec=session.spec(web_image, org=org1, replicas=2, health=TCP), log=log)
    [c] = runtime.start(spec=session.spec(web_image, org=org2, health=TCP), log=log)

    source = session.client.containers.get(a.id)

    def connect(target: Instance) -> int:
        ip, port = target.address.split(":")
        return int(source.exec_run(["python3", "-c", CONNECT, ip, port]).exit_code)

    assert connect(b) == 0
    assert connect(c) != 0
    # The panel's host reaches both.
    assert get(b.address)[0] == 200 and get(c.address)[0] == 200


# Lifecycle --------------------------------------------------------------------------


def test_stop_resume_restart_and_listing(session, runtime, web_image, log):
    spec = session.spec(web_image, health=TCP)
    [instance] = runtime.start(spec=spec, log=log)

    runtime.stop(instance_ids=[instance.id, "0123456789ab", "bad id;"], timeout=5)
    [stopped] = runtime.instances(app=spec.app)
    assert stopped.id == instance.id
    assert stopped.state == "exited"
    assert stopped.exit_code is not None
    assert stopped.address == ""

    runtime.resume(instance_ids=[instance.id])
    [resumed] = runtime.instances(app=spec.app)
    assert resumed.state == "running"
    assert resumed.address == instance.address or resumed.address.endswith(":8000")
    assert resumed.started_at is not None and resumed.started_at != instance.started_at

    runtime.restart(instance_ids=[instance.id], timeout=5)
    [restarted] = runtime.instances(app=spec.app)
    assert restarted.state == "running"
    assert restarted.started_at != resumed.started_at

    runtime.remove(instance_ids=[instance.id, "0123456789ab"], drain_seconds=2)
    assert runtime.instances(app=spec.app) == []
    assert app_containers(session, spec.app) == []


def test_instances_report_an_exited_instance_with_its_code(session, runtime, web_image, log):
    spec = session.spec(web_image, health=TCP, restart="no")
    [instance] = runtime.start(spec=spec, log=log)
    other = session.spec(web_image, health=TCP)
    [other_instance] = runtime.start(spec=other, log=log)

    get(instance.address, "/exit/7")
    container = session.client.containers.get(instance.id)
    assert container.wait(timeout=30)["StatusCode"] == 7

    [exited] = runtime.instances(app=spec.app)
    assert (exited.state, exited.exit_code) == ("exited", 7)
    everything = {i.id: i for i in runtime.instances()}
    assert instance.id in everything and other_instance.id in everything
    assert everything[other_instance.id].exit_code is None
    assert everything[other_instance.id].address == other_instance.address


def test_containers_that_are_not_ours_are_left_alone(session, runtime, web_image):
    foreign = session.client.containers.run(
        web_image, detach=True, labels=dict(session.labels), environment={"PORT": "8000"}
    )
    runtime.remove(instance_ids=[foreign.id])
    runtime.stop(instance_ids=[foreign.id], timeout=1)
    foreign.reload()
    assert foreign.status == "running"
    assert foreign.id not in {i.id for i in runtime.instances()}
    assert list(runtime.logs(instance_ids=[foreign.id])) == []


# Logs and statistics ----------------------------------------------------------------


def test_logs_tail_and_merge(session, runtime, web_image, log):
    spec = session.spec(web_image, health=TCP, replicas=2, env={"START_LINES": "5"})
    first, second = runtime.start(spec=spec, log=log)

    expected = ["starting line 4", "listening on 8000"]
    assert eventually(lambda: list(runtime.logs(instance_ids=[first.id], tail=2)), expected) == (
        expected
    )

    get(first.address, "/echo/from-first")
    get(second.address, "/echo/from-second")
    expected = [f"{first.name}: from-first", f"{second.name}: from-second"]
    merged = eventually(
        lambda: list(runtime.logs(instance_ids=[first.id, second.id], tail=1)), expected
    )
    assert merged == expected

    everything = list(runtime.logs(instance_ids=[first.id], tail=-1))
    assert everything[:2] == ["starting line 0", "starting line 1"]
    assert everything[-1] == "from-first"


def test_logs_follow_until_closed(session, runtime, web_image, log):
    spec = session.spec(web_image, health=TCP)
    [instance] = runtime.start(spec=spec, log=log)
    last = ["listening on 8000"]
    assert eventually(lambda: list(runtime.logs(instance_ids=[instance.id], tail=1)), last) == last

    stream = runtime.logs(instance_ids=[instance.id], tail=1, follow=True)
    assert next(stream) == "listening on 8000"
    get(instance.address, "/echo/live-line")
    assert next(stream) == "live-line"
    stream.close()  # type: ignore[attr-defined]
    with pytest.raises(StopIteration):
        next(stream)
    assert not [t for t in threading.enumerate() if t.name == "gakwaya-logs" and t.is_alive()]


def test_logs_follow_several_instances_prefixes_and_ends_with_them(
    session, runtime, web_image, log
):
    spec = session.spec(web_image, health=TCP, replicas=2, env={"START_LINES": "0"})
    first, second = runtime.start(spec=spec, log=log)
    for one in (first, second):
        last = ["listening on 8000"]
        assert eventually(lambda i=one: list(runtime.logs(instance_ids=[i.id], tail=1)), last) == (
            last
        )
    stream = runtime.logs(instance_ids=[first.id, second.id], tail=1, follow=True)
    seen = {next(stream), next(stream)}
    assert seen == {f"{first.name}: listening on 8000", f"{second.name}: listening on 8000"}
    # Removing the instances ends their streams, and so the iteration.
    runtime.remove(instance_ids=[first.id, second.id])
    assert list(stream) == []


def test_stats(session, runtime, web_image, log):
    spec = session.spec(web_image, health=TCP, memory_mb=128)
    [instance] = runtime.start(spec=spec, log=log)
    for _ in range(3):
        get(instance.address)

    [sample] = runtime.stats(instance_ids=[instance.id, "0123456789ab"])
    assert sample.id == instance.id and sample.name == instance.name
    assert sample.cpu_percent >= 0
    assert sample.memory_bytes > 0
    assert sample.memory_limit_bytes == 128 * 1024 * 1024
    assert sample.network_rx_bytes > 0 and sample.network_tx_bytes > 0
    assert sample.block_read_bytes >= 0 and sample.block_write_bytes >= 0

    runtime.stop(instance_ids=[instance.id], timeout=1)
    assert runtime.stats(instance_ids=[instance.id]) == []


# Images -----------------------------------------------------------------------------


def test_images_and_remove_image(session, runtime, web_image, log):
    kind = {"gakwaya-test.kind": session.key("gc")}
    name = kind["gakwaya-test.kind"]
    image_id = session.image(name, f"FROM {web_image}\nLABEL x=1\n", kind)
    # A second tag elsewhere, and a neighbour whose tag extends this one.
    other = f"{session.repository}:other-{name}"
    session.client.images.get(image_id).tag(other)
    neighbour = session.image(f"{name}-n", f"FROM {web_image}\nLABEL x=2\n", kind)

    [info] = runtime.images(tag_prefix=other)
    assert info.id == image_id
    # Every tag of the image, not only the ones under the prefix.
    assert sorted(info.tags) == sorted([f"{session.repository}:{name}", other])
    assert info.labels["gakwaya-test.kind"] == name
    assert info.created_at is not None
    by_name = runtime.images(tag_prefix=f"{session.repository}:{name}")
    assert {i.id for i in by_name} == {image_id, neighbour}
    assert [i.id for i in runtime.images(tag_prefix=f"{session.repository}:{name}-")] == [neighbour]
    assert runtime.images(tag_prefix=f"{session.repository}-absent:") == []
    with pytest.raises(ProviderError, match="tag_prefix"):
        runtime.images(tag_prefix="")
    session.client.images.remove(other)  # the image keeps its first tag

    [instance] = runtime.start(spec=session.spec(image_id, health=TCP), log=log)
    runtime.remove_image(image=image_id)  # in use: left alone
    assert session.client.images.get(image_id)

    runtime.stop(instance_ids=[instance.id], timeout=1)
    runtime.remove_image(image=image_id)  # a stopped instance still needs it
    assert session.client.images.get(image_id)

    runtime.remove(instance_ids=[instance.id])
    runtime.remove_image(image=image_id)
    with pytest.raises(docker.errors.ImageNotFound):
        session.client.images.get(image_id)
    runtime.remove_image(image=image_id)  # missing: nothing to do
    assert [i.id for i in runtime.images(tag_prefix=f"{session.repository}:{name}")] == [neighbour]


def test_remove_image_by_name_takes_only_that_name(session, runtime, web_image):
    """Identical builds are one image under several names (deployments, apps, panels
    sharing the engine): each owner removes its own name, the image goes with the last."""
    name = session.key("named")
    image_id = session.image(name, f"FROM {web_image}\nLABEL y={name}\n")
    first = f"{session.repository}:{name}"
    second = f"{session.repository}:{name}-again"
    session.client.images.get(image_id).tag(second)

    runtime.remove_image(image=first)  # another name keeps the image
    assert session.client.images.get(image_id).tags == [second]

    user = session.client.containers.create(image_id, labels=dict(session.labels))
    runtime.remove_image(image=second)  # the last name, but a container needs the image
    assert session.client.images.get(image_id).tags == [second]
    user.remove(force=True)

    runtime.remove_image(image=second)
    with pytest.raises(docker.errors.ImageNotFound):
        session.client.images.get(image_id)
    runtime.remove_image(image=second)  # gone: nothing to do


# Connection and registration --------------------------------------------------------


def test_no_engine_is_a_provider_error_not_a_crash():
    runtime = DockerRuntime(host="unix:///nonexistent/docker.sock")
    with pytest.raises(ProviderError, match=r"Docker engine not reachable at unix:///nonexistent"):
        runtime.instances()
    with pytest.raises(ProviderError, match="Docker engine not reachable"):
        list(runtime.logs(instance_ids=["abc"]))

    bad = DockerRuntime(host="tcp://localhost:2375; rm -rf /")
    with pytest.raises(ProviderError, match="docker_host setting must be"):
        bad.instances()


def test_registered_provider_reads_the_setting_at_each_call(session):
    class Panel:
        host = "unix:///nonexistent/docker.sock"

        def settings(self, plugin: str, org_id: int | None = None) -> dict[str, Any]:
            assert plugin == "gakwaya-docker"
            return {"docker_host": self.host}

    panel = Panel()
    [provider] = register_providers(panel=panel)
    assert check_provider(provider, ["runtime:docker"]) == ""
    with pytest.raises(ProviderError, match="not reachable at unix:///nonexistent"):
        provider.instances()
    panel.host = ""  # back to the local engine, without a restart
    assert isinstance(provider.instances(app=session.key("a")), list)


def test_the_panel_loads_the_runtime_and_its_setting_applies_without_restart(
    gakwaya_client, gakwaya_panel, gakwaya_superuser, session
):
    provider = gakwaya_panel.provider("runtime:docker")
    assert isinstance(provider, DockerRuntime)
    url = "/api/v1/plugins/gakwaya-docker/settings"
    headers = gakwaya_superuser.session

    shown = gakwaya_client.get(url, headers=headers)
    assert shown.status_code == 200, shown.text
    [setting] = [s for s in shown.json()["settings"] if s["name"] == "docker_host"]
    assert setting["value"] == "" and setting["scope"] == "installation"

    put = {"values": {"docker_host": "unix:///nonexistent/docker.sock"}}
    assert gakwaya_client.put(url, json=put, headers=headers).status_code == 200
    with pytest.raises(ProviderError, match=r"not reachable at unix:///nonexistent/docker\.sock"):
        provider.instances()

    unset = {"values": {"docker_host": None}}
    assert gakwaya_client.put(url, json=unset, headers=headers).status_code == 200
    assert provider.instances(app=session.key("a")) == []


@pytest.mark.parametrize(
    ("image", "registry", "split"),
    [
        ("nginx", False, ("nginx", "latest")),
        ("nginx:1.25", False, ("nginx", "1.25")),
        ("team/web:2", False, ("team/web", "2")),
        ("localhost/web", True, ("localhost/web", "latest")),
        ("127.0.0.1:5000/acme/web:stable", True, ("127.0.0.1:5000/acme/web", "stable")),
        ("registry.example.com/web", True, ("registry.example.com/web", "latest")),
        ("debian@sha256:" + "0" * 64, False, ("debian", "sha256:" + "0" * 64)),
    ],
)
def test_image_references(image: str, registry: bool, split: tuple[str, str]) -> None:
    from gakwaya_docker.runtime import names_registry, split_reference

    assert names_registry(image) is registry
    assert split_reference(image) == split


def test_prepare_image_refuses_a_bad_reference_and_uses_a_local_copy(
    runtime: Any, web_image: str
) -> None:
    lines: list[str] = []
    for bad in ("-x", "Web", "a;b", "a b", "a\nb"):
        with pytest.raises(ProviderError, match="image"):
            runtime.prepare_image(image=bad, log=lines.append)
    assert runtime.prepare_image(image=web_image, log=lines.append).startswith("sha256:")
    assert any("engine's copy" in line for line in lines)


def test_remove_image_by_one_of_two_tags_only_untags_it(runtime: Any, web_image: str) -> None:
    client = docker.from_env()
    image = client.images.get(web_image)
    first, second = "gakwaya-test-docker/untag:first", "gakwaya-test-docker/untag:second"
    image.tag(first)
    image.tag(second)
    try:
        runtime.remove_image(image=second)
        # The other name (an earlier release's tag, say) still has its image.
        assert client.images.get(first).id == image.id
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(second)
    finally:
        for name in (first, second):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(name)

"""Per-organization networks: one bridge each, ``gakwaya-<org>``, made on first use.

Two limits of the engine shape this module:

- Docker 20.10 may create two networks of one name when two creations race (its
  ``CheckDuplicate`` is checked without a lock). Creations in one process are
  serialized by the caller; across processes every caller picks the same network
  (the lowest id) and removes the other ones while they are still empty.
- The engine's default address pools hold about 30 bridge networks, so about 30
  organizations per host. The ``network_pool`` setting (an IPv4 CIDR such as
  ``10.240.0.0/12``) lifts that: each new network takes the first /24 of it that no
  network on the engine overlaps. The engine itself refuses overlapping subnets, so
  two processes picking the same one cannot both succeed: the loser tries the next.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import docker.types

from gakwaya_docker.labels import MANAGED_LABEL, MANAGED_VALUE, ORG_LABEL, network_name
from gakwaya_sdk.providers import ProviderError

#: Size of each organization's subnet taken from ``network_pool``: 253 containers.
SUBNET_PREFIX = 24
#: Subnets tried when creations race for the same free one.
ATTEMPTS = 16


def parse_pool(value: str) -> ipaddress.IPv4Network | None:
    """The ``network_pool`` setting: empty (the engine's own pools) or an IPv4 CIDR of
    at least one /24."""
    value = value.strip()
    if not value:
        return None
    try:
        pool = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        pool = None
    if pool is None or pool.prefixlen > SUBNET_PREFIX:
        raise ProviderError(
            "the network_pool setting must be an IPv4 network of /24 or larger, "
            "written as its first address (e.g. 10.240.0.0/12), or empty"
        )
    return pool


def ensure(client: docker.DockerClient, org: str, pool: ipaddress.IPv4Network | None) -> str:
    """The id of ``org``'s network, created when missing."""
    name = network_name(org)
    found = named(client, name)
    if not found:
        _create(client, name, org, pool)
        found = named(client, name)
    if not found:
        raise ProviderError(f"network {name} could not be created")
    keep, *extra = found
    for network in extra:
        try:
            client.api.remove_network(network["Id"])
        except docker.errors.APIError:
            continue  # in use by another process's containers: keep it
    return str(keep["Id"])


def named(client: docker.DockerClient, name: str) -> list[dict[str, Any]]:
    # The engine's name filter matches substrings: keep exact names only.
    found = [n for n in client.api.networks(names=[name]) if n.get("Name") == name]
    return sorted(found, key=lambda n: str(n["Id"]))


def _create(
    client: docker.DockerClient, name: str, org: str, pool: ipaddress.IPv4Network | None
) -> None:
    labels = {MANAGED_LABEL: MANAGED_VALUE, ORG_LABEL: org}
    if pool is None:
        _create_one(client, name, labels, None)
        return
    tried = 0
    for subnet in _free_subnets(client, pool):
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet))])
        try:
            _create_one(client, name, labels, ipam)
            return
        except docker.errors.APIError as exc:
            tried += 1
            # Taken meanwhile by another process (or a network outside our view).
            if "overlap" not in str(exc.explanation or exc).lower() or tried >= ATTEMPTS:
                raise
    raise ProviderError(f"network {name}: no free /{SUBNET_PREFIX} left in network_pool {pool}")


def _create_one(client: docker.DockerClient, name: str, labels: dict[str, str], ipam: Any) -> None:
    try:
        client.api.create_network(
            name, driver="bridge", check_duplicate=True, labels=labels, ipam=ipam
        )
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: created by someone else meanwhile
            raise


def _free_subnets(
    client: docker.DockerClient, pool: ipaddress.IPv4Network
) -> Iterator[ipaddress.IPv4Network]:
    used: list[ipaddress.IPv4Network] = []
    for network in client.api.networks():
        for config in (network.get("IPAM") or {}).get("Config") or ():
            try:
                subnet = ipaddress.ip_network(str(config.get("Subnet", "")), strict=False)
            except ValueError:
                continue
            if isinstance(subnet, ipaddress.IPv4Network):
                used.append(subnet)
    for candidate in pool.subnets(new_prefix=SUBNET_PREFIX):
        if not any(candidate.overlaps(u) for u in used):
            yield candidate

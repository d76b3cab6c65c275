"""One ``docker stats`` sample turned into :class:`InstanceStats`, computed the way the
Docker CLI computes its columns, so the panel shows the numbers users know."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gakwaya_sdk.providers import InstanceStats


def cpu_percent(raw: Mapping[str, Any]) -> float:
    """CPU time used between the engine's two samples, as a share of one core times 100
    (200.0 = two cores busy), like the CLI's ``CPU %``."""
    cpu = raw.get("cpu_stats") or {}
    pre = raw.get("precpu_stats") or {}
    used = _int((cpu.get("cpu_usage") or {}).get("total_usage")) - _int(
        (pre.get("cpu_usage") or {}).get("total_usage")
    )
    system = _int(cpu.get("system_cpu_usage")) - _int(pre.get("system_cpu_usage"))
    cpus = _int(cpu.get("online_cpus")) or len(
        (cpu.get("cpu_usage") or {}).get("percpu_usage") or ()
    )
    if used <= 0 or system <= 0 or cpus <= 0:
        return 0.0
    return used / system * cpus * 100.0


def memory_bytes(raw: Mapping[str, Any]) -> int:
    """Usage minus the reclaimable page cache (``inactive_file``), as the CLI does on
    cgroup v1 (``total_inactive_file``) and v2 (``inactive_file``)."""
    memory = raw.get("memory_stats") or {}
    usage = _int(memory.get("usage"))
    stats = memory.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):
        if key in stats:
            inactive = _int(stats[key])
            return usage - inactive if inactive < usage else usage
    return usage


def to_stats(container_id: str, name: str, raw: Mapping[str, Any]) -> InstanceStats:
    networks = raw.get("networks") or {}
    rx = sum(_int(n.get("rx_bytes")) for n in networks.values())
    tx = sum(_int(n.get("tx_bytes")) for n in networks.values())
    read = write = 0
    blkio = (raw.get("blkio_stats") or {}).get("io_service_bytes_recursive") or ()
    for entry in blkio:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += _int(entry.get("value"))
        elif op == "write":
            write += _int(entry.get("value"))
    return InstanceStats(
        id=container_id,
        name=name,
        cpu_percent=round(cpu_percent(raw), 2),
        memory_bytes=memory_bytes(raw),
        memory_limit_bytes=_int((raw.get("memory_stats") or {}).get("limit")),
        network_rx_bytes=rx,
        network_tx_bytes=tx,
        block_read_bytes=read,
        block_write_bytes=write,
    )


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0

"""srbench sweep on Ray: a loopback-only local cluster started (and stopped) by this module.

Run with ``nox -s ray`` (or ``python -m pytest -m ray tests/test_sweep_ray.py``); needs the
``srbench[ray]`` extra. The cluster is a head node with 2 CPUs started with ``ray start
--head --node-ip-address 127.0.0.1 --block`` in the environment of
:func:`~srbench.runner.launchers.ray_engine.loopback_environment`; only that process (and
its session) is ever stopped, never ``ray stop``.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests_support import require_weights

from srbench.commands.sweep import build_sweep_plan
from srbench.core.errors import SrbenchError
from srbench.runner.launchers.ray_engine import RayEngine, loopback_environment
from srbench.runner.sweep import run_sweep

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TESTS = Path(__file__).resolve().parent
FAST = {"data": "sample-mini", "profile_input": "1x3x64x64", "warmup": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """The module's Ray head: its address, process, temp folder and a connected engine."""

    def __init__(self, address: str, proc: subprocess.Popen, temp: Path, engine: RayEngine) -> None:
        self.address, self.proc, self.temp, self.engine = address, proc, temp, engine


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    saved = dict(os.environ)
    temp = Path(tempfile.mkdtemp(prefix="srbt-", dir="/tmp"))  # short: Unix socket paths
    os.environ.update(loopback_environment())
    os.environ["SRBENCH_PLUGINS"] = "srbench_test_models"
    os.environ["SRBENCH_TEST_KILL_MARKER"] = str(temp / "killed-worker")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), saved.get("PYTHONPATH")]))
    pytest.importorskip("ray", reason="needs the srbench[ray] extra")
    port = _free_port()
    ray_cli = Path(sys.executable).parent / "ray"
    log = open(temp / "head.log", "w")
    proc = subprocess.Popen(
        [
            str(ray_cli),
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--num-cpus",
            "2",
            "--num-gpus",
            "0",
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--temp-dir",
            str(temp),
            "--block",
        ],
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    engine = RayEngine(address=address, cpus_per_cell=1, gpu=False, retries=2)
    try:
        engine.start()
        yield Cluster(address, proc, temp, engine)
    finally:
        try:
            engine.shutdown()
            import ray

            ray.shutdown()
        finally:
            proc.send_signal(signal.SIGTERM)  # only the head we started
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: our processes only
                proc.wait(timeout=10)
            log.close()
            os.environ.clear()
            os.environ.update(saved)
            shutil.rmtree(temp, ignore_errors=True)


def _is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


def _process_tree(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    return tree


def _socket_inodes(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            for fd in fd_dir.iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return inodes


def _proc_net_addresses(inodes: set[str]) -> list[tuple[str, str]]:
    """(local, remote) IPs of the TCP/UDP sockets with these inodes, from /proc/net."""
    out = []
    for kind in ("tcp", "tcp6", "udp", "udp6"):
        path = Path(f"/proc/net/{kind}")
        if not path.is_file():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                out.append((_hex_ip(fields[1]), _hex_ip(fields[2])))
    return out


def _hex_ip(field: str) -> str:
    raw = bytes.fromhex(field.split(":")[0])
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    addr = ipaddress.IPv6Address(words)
    return str(addr.ipv4_mapped or addr)


def test_every_address_ray_reports_and_every_socket_is_loopback(cluster: Cluster) -> None:
    import ray

    nodes = ray.nodes()
    assert nodes and all(n["Alive"] for n in nodes)
    for node in nodes:
        assert _is_loopback(node["NodeManagerAddress"]), node
    gcs = ray.get_runtime_context().gcs_address
    assert _is_loopback(gcs.rsplit(":", 1)[0]), gcs
    assert cluster.address.startswith("127.0.0.1:")
    pairs = _proc_net_addresses(_socket_inodes(_process_tree(cluster.proc.pid) | {os.getpid()}))
    assert pairs, "found none of the cluster's sockets"
    for local, remote in pairs:
        # A listener on 0.0.0.0/:: would accept traffic on the private IP: not allowed either.
        assert _is_loopback(local), (local, remote)
        assert remote in ("0.0.0.0", "::") or _is_loopback(remote), (local, remote)


def test_three_models_two_dtypes(cluster: Cluster, tmp_path: Path) -> None:
    import ray

    require_weights()
    plan = build_sweep_plan({**FAST, "models": "span,rlfn,bicubic", "dtype": "fp32,bf16"})
    summary = run_sweep(plan, tmp_path / "sweep", cluster.engine)
    assert (summary.measured, summary.failed) == (6, 0)
    rows = {m.name: m for m in summary.run.models}
    assert sorted(rows) == sorted(f"{m} @ {d}" for m in ("span", "rlfn", "bicubic") for d in ("fp32", "bf16"))
    node_ids = {n["NodeID"] for n in ray.nodes()}
    for row in rows.values():
        assert row.status == "ok" and row.psnr_y is not None
        assert row.cell["node"] in node_ids and row.cell["device"] == "cpu"
    # The counts do not depend on the dtype; bf16 changes the outputs, so the PSNR.
    for model in ("span", "rlfn", "bicubic"):
        a, b = rows[f"{model} @ fp32"], rows[f"{model} @ bf16"]
        assert (a.params, a.flops, a.activations, a.convs) == (b.params, b.flops, b.activations, b.convs)
    assert rows["span @ fp32"].psnr_y != rows["span @ bf16"].psnr_y
    assert summary.run.environment["torch_threads"] == 1  # one CPU per cell, set explicitly


def test_killed_worker_is_retried_and_equals_an_uninterrupted_cell(cluster: Cluster, tmp_path: Path) -> None:
    marker = Path(os.environ["SRBENCH_TEST_KILL_MARKER"])
    assert not marker.exists()
    plan = build_sweep_plan({**FAST, "models": "test_killonce", "runs": 2})
    summary = run_sweep(plan, tmp_path / "sweep", cluster.engine)
    # Exactly one build killed its Ray worker (the marker holds that worker's pid) ...
    assert marker.is_file() and int(marker.read_text()) > 1
    # ... Ray reran that cell, and both runs finished with identical measurements.
    assert (summary.measured, summary.failed) == (2, 0)
    cells = [
        __import__("json").loads((tmp_path / "sweep" / "cells" / f"{c.key}.json").read_text())["models"][0]
        for c in plan.cells
    ]
    assert [c["status"] for c in cells] == ["no-weights", "no-weights"]
    first, second = cells
    for key in ("params", "flops", "activations", "convs"):
        assert first[key] == second[key]
    assert [i["sr_sha256"] for i in first["images"]] == [i["sr_sha256"] for i in second["images"]]


def test_gpu_cells_on_a_cluster_without_gpus_are_refused(cluster: Cluster) -> None:
    import ray

    engine = RayEngine(address=cluster.address, gpu=True)
    engine._ray = ray  # already connected by the module's engine
    with pytest.raises(SrbenchError, match="has no GPU"):
        engine.check_resources()
    big = RayEngine(address=cluster.address, cpus_per_cell=3, gpu=False)
    big._ray = ray
    with pytest.raises(SrbenchError, match="--cpus-per-cell 2"):
        big.check_resources()

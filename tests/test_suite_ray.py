"""The Ray executor against a real local Ray cluster on 127.0.0.1 (started and stopped here)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness.suite.executors import job_resources
from harness.suite import Job
from tests._suite_support import write_leaderboard

pytest.importorskip("ray")

# Ray turns 127.0.0.1 into the machine's public address and listens on every interface,
# unless told this is a single-machine cluster: then everything binds to the loopback only.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def test_gpu_jobs_ask_ray_for_a_gpu():
    assert job_resources(Job("amazon8", "hf:gemma-3-270m", options=(("device", '"cuda"'),))) == \
        {"num_cpus": 1, "num_gpus": 1}
    assert job_resources(Job("amazon8", "hf:gemma-3-270m")) == {"num_cpus": 1, "num_gpus": 0}
    assert job_resources(Job("amazon8", "reference:human", resources=(("num_cpus", 2),)))["num_cpus"] == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """`ray start --head --block` in its own process group; stopped by that PID at the end."""
    ray_bin = Path(sys.executable).with_name("ray")
    temp = tempfile.mkdtemp(prefix="prb-ray-", dir="/tmp")     # short: Ray's socket paths are limited
    port = _free_port()
    ports = {f"--{name}": str(_free_port()) for name in (
        "ray-client-server-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
        "runtime-env-agent-port", "metrics-export-port", "node-manager-port", "object-manager-port")}
    cmd = [str(ray_bin), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
           "--num-cpus", "1", "--include-dashboard=false", "--object-store-memory", str(100 * 2**20),
           "--temp-dir", temp, "--disable-usage-stats", *[x for kv in ports.items() for x in kv]]
    log = open(Path(temp) / "ray-start.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **LOOPBACK_ENV})
    address = f"127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ray start exited: {(Path(temp) / 'ray-start.log').read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.5)
    else:
        pytest.fail("Ray head did not come up in 120 s")
    try:
        yield address
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)            # whatever it started and left behind
        except ProcessLookupError:
            pass
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_cli_suite_on_a_real_ray_cluster(ray_cluster, data_dir, tmp_path):
    """The driver runs in its own process, as a user would run it (and with the loopback setting)."""
    board = write_leaderboard(tmp_path / "board.yaml", """
name: ray
tasks: [amazon8, appliances]
references:
  amazon8: [human, gpt-4o-mini]
  appliances: [llama-3.1-8b-qlora-appliances]
models:
  - {model: "nosuchbackend:x", tasks: [amazon8]}
""")
    store = tmp_path / "runs"
    cmd = [str(Path(sys.executable).with_name("pricebench")), "--data-dir", str(data_dir), "--store", str(store),
           "suite", str(board), "--executor", "ray", "--address", ray_cluster, "--out", str(tmp_path / "report")]
    env = {**os.environ, **LOOPBACK_ENV}
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 1, first.stderr[-3000:]
    assert "1 job(s) failed" in first.stderr and "unknown backend 'nosuchbackend'" in first.stderr
    assert "4 jobs done, 1 failed, 750 items predicted" in first.stdout
    runs = [p for p in store.iterdir() if (p / "metrics.json").exists()]        # written by the workers
    assert len(runs) == 3
    assert (tmp_path / "report" / "tasks" / "appliances.html").exists()

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert "4 jobs done, 1 failed, 0 items predicted" in again.stdout, again.stderr[-3000:]

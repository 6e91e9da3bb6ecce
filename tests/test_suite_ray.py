"""The Ray executor on a real two-node Ray cluster on 127.0.0.1 (started and stopped here by PID).

Both nodes (and the drivers) run in a private network namespace. The worker node also has its
own mount namespace, with empty tmpfs folders over the driver's folder (its run stores, task
files and boards) and over the course data: the paths exist there but show nothing, as on a
cluster without a shared filesystem. The test's jobs ask for a custom resource only the worker
node has, so they run there.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.suite import Job
from harness.suite.executors import job_resources
from harness.suite.shipped import ShippedTask
from harness.tasks import load_task
from tests._suite_support import small_task, write_leaderboard

pytest.importorskip("ray")

REPO = Path(__file__).resolve().parent.parent
CLI = REPO / "tests" / "_cli_with_test_backends.py"
# The cluster lives in its own network namespace, so its token authentication is off: the test
# does not depend on (or create) a token in ~/.ray.
CLUSTER_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
WAIT_FOR_HEAD = """
import socket, time
deadline = time.time() + 120
while socket.socket().connect_ex(("127.0.0.1", 6379)):
    if time.time() > deadline:
        raise SystemExit("the Ray head did not come up in 120 s")
    time.sleep(0.5)
"""
# A driver with a smaller batch and progress cadence than the CLI's (which has the defaults).
DRIVER = f"""
import sys
sys.path[:0] = [{str(REPO)!r}, {str(REPO / "tests")!r}]
import _slow_predictor
from harness.suite import load_leaderboard, run_suite
from harness.suite.ray_executor import RayExecutor

_slow_predictor.register()
executor = RayExecutor(sys.argv[1], send_every_items=8, send_every_s=2.0, progress_every=2.0)
result = run_suite(load_leaderboard(sys.argv[2]), executor=executor, store=sys.argv[3])
print(f"{{len(result.outcomes)}} jobs, {{len(result.failures)}} failed, {{result.computed}} items predicted")
"""
ON_WORKER = "resources: {custom: {pricebench_worker: 1}}"
# Run on the worker node by a driver process: what it sees of the given paths, and where it is.
PROBE = """
import json, os, sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.time() + 120
while not ray.cluster_resources().get("pricebench_worker"):
    if time.time() > deadline:
        raise SystemExit("the worker node did not join in 120 s")
    time.sleep(0.5)
@ray.remote(num_cpus=0, resources={"pricebench_worker": 0.01})
def look(paths):
    seen = {p: sorted(os.listdir(p)) if os.path.isdir(p) else None for p in paths}
    return {"seen": seen, "mnt": os.readlink("/proc/self/ns/mnt")}
print(json.dumps(ray.get(look.remote(sys.argv[2:]))))
"""


def test_jobs_ask_ray_for_their_resources():
    assert job_resources(Job("amazon8", "hf:gemma-3-270m", options=(("device", '"cuda"'),))) == \
        {"num_cpus": 1, "num_gpus": 1}
    assert job_resources(Job("amazon8", "hf:gemma-3-270m")) == {"num_cpus": 1, "num_gpus": 0}
    assert job_resources(Job("amazon8", "reference:human", resources=(("num_cpus", 2),)))["num_cpus"] == 2
    custom = Job("amazon8", "baseline:random", resources=(("custom", (("big_gpu", 1),)), ("memory", 2**30)))
    assert job_resources(custom) == {"num_cpus": 1, "num_gpus": 0, "memory": 2**30, "resources": {"big_gpu": 1}}


def test_a_shipped_task_carries_its_items_and_never_reads_the_data_folder(data_dir):
    task = load_task("amazon8", data_dir=data_dir)
    task.eval_items()
    shipped = ShippedTask.of(task)
    assert shipped.eval_items() == task.eval_items() and shipped.identity() == task.identity()
    assert shipped.references_path is None
    with pytest.raises(InputError, match="train split was not sent"):
        shipped.train_items()
    task.train_items()
    assert len(ShippedTask.of(task).train_items()) == len(task.train_items())


def test_a_shipped_task_keeps_its_in_context_examples(data_dir):
    """The worker renders the run's own prompts (its probes: hf's batch and prefix checks), shots
    included, from the train split the driver sent."""
    from harness.prompts import build_requests

    task = load_task("amazon8", data_dir=data_dir, eval_slice="0:3").with_in_context(
        {"shots": 2, "shot_selector": "random"})
    assert task.identity()["in_context"]          # reads the train split: it travels with the task
    shipped = ShippedTask.of(task)
    assert shipped.in_context == task.in_context and shipped.identity() == task.identity()
    ours, theirs = (build_requests(t, t.eval_items(), "base") for t in (task, shipped))
    assert [r.prompt for r in ours] == [r.prompt for r in theirs] and "Price is $" in ours[0].prompt[:-20]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL to its process group: whatever it started and left behind."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@dataclass
class Cluster:
    address: str
    enter: list             # command prefix: run inside the cluster's network namespace
    base: Path              # seen by both nodes: the calls logs
    driver: Path            # the driver's folder: empty on the worker node
    worker_cache: Path      # the worker node's PRICEBENCH_CACHE (fitted baselines land there)

    def folder(self, name: str) -> Path:
        path = self.driver / name
        path.mkdir()
        return path


def _namespaces_missing() -> str | None:
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("unshare", "nsenter", "ip", "mount", "hostname")):
        return "a two-node cluster on one machine needs root, unshare, nsenter, ip, mount and hostname (namespaces)"
    probe = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c",
                            "ip link set lo up && mount -t tmpfs none /mnt"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"cannot create network and mount namespaces: {probe.stderr.strip()}"


@pytest.fixture(scope="module")
def cluster(data_dir):
    """Head and worker node in a private network namespace (only its own loopback: nothing
    outside can reach the cluster; hostname `localhost`, so Ray's node address is 127.0.0.1),
    the worker node also in its own mount namespace."""
    reason = _namespaces_missing()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="prb-ray-", dir="/tmp"))     # short: Ray's socket paths are limited
    driver, worker_cache = base / "d", base / "wcache"
    driver.mkdir()
    (driver / "driver-only").write_text("the worker node must not see this")
    procs = []
    try:
        holder = subprocess.Popen(["unshare", "--net", "--uts", "sh", "-c",
                                   "ip link set lo up && hostname localhost && echo up && exec sleep 3600"],
                                  stdout=subprocess.PIPE, text=True, start_new_session=True)
        procs.append(holder)
        assert holder.stdout.readline().strip() == "up"
        enter = ["nsenter", f"--target={holder.pid}", "--net", "--uts"]
        ray_bin, address = str(Path(sys.executable).with_name("ray")), "127.0.0.1:6379"
        env = {**os.environ, **CLUSTER_ENV}
        common = ["--block", "--node-ip-address", "127.0.0.1", "--object-store-memory", str(100 * 2**20),
                  "--disable-usage-stats"]
        with open(base / "head.log", "w") as log:
            procs.append(subprocess.Popen(
                [*enter, ray_bin, "start", "--head", "--port", "6379", "--num-cpus", "1", "--include-dashboard=false",
                 "--temp-dir", str(base / "h"), *common], stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True))
        up = subprocess.run([*enter, sys.executable, "-c", WAIT_FOR_HEAD], capture_output=True, text=True, timeout=150)
        assert up.returncode == 0, (base / "head.log").read_text()[-3000:]
        # The worker node: the driver's folder and the course data are empty tmpfs folders there.
        hide = [driver] + ([data_dir.resolve()] if not REPO.is_relative_to(data_dir.resolve()) else [])
        mounts = " && ".join(f"mount -t tmpfs -o size=1m none {shlex.quote(str(p))}" for p in hide)
        start = [ray_bin, "start", "--address", address, "--num-cpus", "2", "--temp-dir", str(base / "w"),
                 "--resources", json.dumps({"pricebench_worker": 2}), *common]
        worker_env = {**env, "PRICEBENCH_CACHE": str(worker_cache),        # the worker's own caches
                      "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
        with open(base / "worker.log", "w") as log:
            procs.append(subprocess.Popen(
                [*enter, "unshare", "--mount", "--propagation", "private", "sh", "-c",
                 f"{mounts} && exec {shlex.join(start)}"], stdout=log, stderr=subprocess.STDOUT, env=worker_env,
                start_new_session=True))
        probe = subprocess.run([*enter, sys.executable, "-c", PROBE, address, *map(str, hide)],
                               capture_output=True, text=True, timeout=180, env=env)
        assert probe.returncode == 0, probe.stderr[-3000:] + (base / "worker.log").read_text()[-2000:]
        seen = json.loads(probe.stdout.strip().splitlines()[-1])
        assert seen["mnt"] != os.readlink("/proc/self/ns/mnt")                  # it ran on the worker node ...
        assert seen["seen"] == {str(p): [] for p in hide}                       # ... blind to these
        yield Cluster(address, enter, base, driver, worker_cache)
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(base, ignore_errors=True)


def _suite(cluster: Cluster, work: Path, board: Path, store: Path, *executor: str):
    """`pricebench suite` as a user runs it (plus the test backends), in the cluster's network."""
    cmd = [*cluster.enter, sys.executable, str(CLI), "--store", str(store), "suite", str(board), *executor,
           "--out", str(work / "report")]
    env = {**os.environ, **CLUSTER_ENV, "PRICEBENCH_CACHE": str(work / f"cache-{store.name}")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def _same_runs(store: Path, other: Path) -> list[str]:
    """The run ids of `store`, after checking that `other` holds the same runs, byte for byte."""
    ids = sorted(p.name for p in store.iterdir() if (p / "metrics.json").exists())
    assert ids == sorted(p.name for p in other.iterdir() if (p / "metrics.json").exists())
    for rid in ids:
        for name in ("predictions.jsonl", "metrics.json"):
            assert (store / rid / name).read_bytes() == (other / rid / name).read_bytes(), f"{rid}/{name}"
    return ids


def _stored(store: Path) -> set[str]:
    """The item ids in the store's run folders now (complete lines only: the driver is writing)."""
    lines = [line for p in store.glob("*/predictions.jsonl") for line in p.read_text().split("\n")[:-1]]
    return {json.loads(line)["id"] for line in lines}


def _calls(log: Path) -> list[tuple[str, str, str]]:
    return [tuple(line.split()) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.slow
def test_a_suite_on_two_nodes_fills_the_drivers_store_as_a_local_run_does(cluster, data_dir):
    work = cluster.folder("a")
    mini = small_task(work, data_dir, n=20, name="minia")
    log = cluster.base / "calls-a.log"
    board = write_leaderboard(work / "board.yaml", f"""
name: ray
tasks: [amazon8, {mini}]
references:
  amazon8: [human, gpt-4o-mini]
models:
  - {{model: "baseline:features-linreg", tasks: [amazon8], {ON_WORKER}}}
  - {{model: "slowtest:a", tasks: [minia], options: {{delay: 0.01, log: "{log}"}}, {ON_WORKER}}}
  - {{model: "nosuchbackend:x", tasks: [amazon8]}}
""")
    store, local = work / "runs", work / "runs-local"
    ray = ["--executor", "ray", "--address", cluster.address]
    first = _suite(cluster, work, board, store, *ray)
    assert first.returncode == 1, first.stderr[-3000:]
    assert "1 job(s) failed" in first.stderr and "unknown backend 'nosuchbackend'" in first.stderr
    assert "5 jobs done, 1 failed, 770 items predicted" in first.stdout, first.stdout + first.stderr[-3000:]
    here = os.readlink("/proc/self/ns/mnt")
    assert len(_calls(log)) == 20 and here not in {mnt for _, mnt, _ in _calls(log)}   # predicted on the worker
    assert list((cluster.worker_cache / "fitted").iterdir())       # the baseline was fitted there too
    assert (work / "report" / "tasks" / "minia.html").exists()

    assert _suite(cluster, work, board, local).returncode == 1
    assert len(_same_runs(store, local)) == 4
    assert {mnt for _, mnt, _ in _calls(log)[20:]} == {here}

    again = _suite(cluster, work, board, store, *ray)
    assert "5 jobs done, 1 failed, 0 items predicted" in again.stdout, again.stderr[-3000:]
    assert len(_calls(log)) == 40                                      # nothing was asked again


@pytest.mark.slow
def test_a_worker_lost_mid_job_costs_at_most_its_unsent_batch(cluster, data_dir):
    work = cluster.folder("b")
    small_task(work, data_dir, n=60, name="minib")
    log = cluster.base / "calls-b.log"
    board = write_leaderboard(work / "board.yaml", f"""
name: lost
tasks: [{work / "minib.yaml"}]
models:
  - {{model: "slowtest:b", options: {{delay: 0.25, log: "{log}"}}, {ON_WORKER}}}
""")
    store = work / "runs"
    cmd = [*cluster.enter, sys.executable, "-c", DRIVER, cluster.address, str(board), str(store)]
    with open(work / "out.txt", "w") as out, open(work / "err.txt", "w") as err:
        driver = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, **CLUSTER_ENV})
        try:
            deadline = time.time() + 120
            while not _stored(store):
                assert driver.poll() is None and time.time() < deadline, (work / "err.txt").read_text()[-3000:]
                time.sleep(0.1)
            while len(_calls(log)) < 11 and time.time() < deadline:     # 8 sent, a few not yet
                time.sleep(0.05)
            stored = _stored(store)
            worker_pid = int(_calls(log)[-1][0])
            os.kill(worker_pid, signal.SIGKILL)            # the job's worker process, mid-job
            assert driver.wait(timeout=240) == 0, (work / "err.txt").read_text()[-3000:]
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
    errors = (work / "err.txt").read_text()
    assert "running it again (1/3)" in errors
    assert re.search(r"minib \| slowtest:b .*: \d+/\d+ items, [\d.]+ items/s", errors)   # progress, every 2 s
    assert "1 jobs, 0 failed, 60 items predicted" in (work / "out.txt").read_text()
    assert 0 < len(stored) < 60
    calls = _calls(log)
    before = [item for pid, _, item in calls if int(pid) == worker_pid]
    after = [item for pid, _, item in calls if int(pid) != worker_pid]
    assert after and not set(after) & stored                    # what the driver had was not asked again
    assert len(calls) - 60 <= 8                                 # at most the batch not sent yet was lost
    (rid,) = [p.name for p in store.iterdir()]
    final = [json.loads(line)["id"] for line in (store / rid / "predictions.jsonl").read_text().splitlines()]
    assert len(final) == 60 and set(final) == set(before) | set(after)
    manifest = json.loads((store / rid / "manifest.json").read_text())
    assert [s.get("ended") for s in manifest["sessions"]] == ["crashed", None]
    assert manifest["sessions"][1]["resumed_from"] >= len(stored)

    local = work / "runs-local"
    assert _suite(cluster, work, board, local).returncode == 0
    assert _same_runs(store, local) == [rid]


@pytest.mark.slow
def test_a_fine_tune_trains_on_the_worker_and_its_adapter_travels_both_ways(cluster, data_dir):
    """Asked for the worker's resource, the training runs there (no shared disk: the recipe, task, data
    and adapter cache are the driver's, hidden on the worker); the adapter comes back into the driver's
    cache, and the evaluations (final and a checkpoint) run on the worker with the adapter sent to it.
    A CPU recipe asking for nothing trains on the driver meanwhile."""
    pytest.importorskip("trl")
    from harness.cache import cache_root
    from tests.test_suite_finetune import _recipe, _tiny_task

    work = cluster.folder("c")
    for cache in (cluster.worker_cache, work / "cache-runs"):   # the test models, as here
        cache.mkdir(parents=True, exist_ok=True)
        for sub in ("gguf", "models"):
            if not (cache / sub).exists():
                (cache / sub).symlink_to(cache_root() / sub)
    recipe, here, adapters = _recipe(work, "tiny-ray"), _recipe(work, "tiny-here", steps=2), work / "adapters"
    board = write_leaderboard(work / "board.yaml", f"""
name: ft-ray
tasks: [{_tiny_task(work, data_dir)}]
models:
  - {{model: "finetune:{recipe}", checkpoints: [2], options: {{adapters: "{adapters}", batch_size: 3}}, {ON_WORKER}}}
  - {{model: "finetune:{here}", options: {{adapters: "{adapters}", batch_size: 3}}}}
""")
    store = work / "runs"
    first = _suite(cluster, work, board, store, "--executor", "ray", "--address", cluster.address)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    assert "2 trainings (0 failed), 3 jobs done, 0 failed, 9 items predicted" in first.stdout, first.stdout
    folders = {json.loads((p / "manifest.json").read_text())["recipe_name"]: p for p in adapters.iterdir()}
    folder, driver_side = folders["tiny-ray"], json.loads((folders["tiny-here"] / "manifest.json").read_text())
    assert driver_side["status"] == "complete" and "ray_worker" not in driver_side["sessions"][-1]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete" and (folder / "final" / "adapter_model.safetensors").exists()
    assert sorted(p.name for p in (folder / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    trained_on = manifest["sessions"][-1]["ray_worker"]["node_id"]
    runs = [json.loads((p / "manifest.json").read_text()) for p in store.iterdir()]
    on_worker = [r for r in runs if r["identity"]["predictor"]["finetune"]["adapter_id"] == folder.name]
    assert len(runs) == 3 and {r["info"]["ray_worker"]["node_id"] for r in on_worker} == {trained_on}
    assert sorted(str(r["identity"]["predictor"]["finetune"]["checkpoint"]) for r in on_worker) == ["2", "None"]

    dry = _suite(cluster, work, board, store, "--dry-run")          # the driver finds it as trained, every job cached
    assert re.search(rf"^trained +tiny \| train tiny-ray  adapter {folder.name}  4 steps; checkpoints 2, 4$",
                     dry.stdout, re.M), dry.stdout + dry.stderr[-3000:]
    assert len(re.findall(r"^cached +tiny \| finetune:", dry.stdout, re.M)) == 3, dry.stdout
    again = _suite(cluster, work, board, store, "--executor", "ray", "--address", cluster.address)
    assert "2 trainings (0 failed), 3 jobs done, 0 failed, 0 items predicted" in again.stdout, again.stderr[-3000:]
    assert len(json.loads((folder / "manifest.json").read_text())["sessions"]) == 1      # trained once

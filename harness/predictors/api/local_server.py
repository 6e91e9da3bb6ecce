"""A local OpenAI-compatible server on 127.0.0.1, started and stopped by PID: `transformers serve`
(needs `pip install 'transformers[serving]'`) or vLLM's (in its own virtualenv; unlike transformers
serve it honours `n`, which sampled decoding asks for). Both serve a safetensors folder, not a GGUF.
The openai: predictor's tests and the concurrency benchmark need one.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def transformers_serve(folder, extra_args=(), log_path=None, ready_timeout: float = 180):
    """Yield the base_url (`http://127.0.0.1:PORT/v1`) of a healthy server; stop it on exit."""
    port = free_port()
    cli = Path(sys.executable).with_name("transformers")
    command = [str(cli), "serve", str(folder), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
               *extra_args]
    with _serve("transformers serve", command, port, None, log_path, ready_timeout) as url:
        yield url


@contextmanager
def vllm_serve(folder, python, extra_args=(), log_path=None, ready_timeout: float = 300, kv_cache_gib: int = 1):
    """vLLM's OpenAI-compatible server (it honours `n` and `seed`), run by `python` (a vLLM
    virtualenv's, e.g. .venv-vllm/bin/python); yield its base_url, stop it on exit."""
    port = free_port()
    command = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder),
               "--host", "127.0.0.1", "--port", str(port), *extra_args]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}      # its own virtualenv only
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gib))
    with _serve("vllm serve", command, port, env, log_path, ready_timeout) as url:
        yield url


@contextmanager
def _serve(name: str, command: list[str], port: int, env, log_path, ready_timeout: float):
    out = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    def log_tail() -> str:
        return Path(log_path).read_text()[-2000:] if log_path else "(no log kept)"

    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not healthy after {ready_timeout:.0f} s: {log_tail()}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if out is not subprocess.DEVNULL:
            out.close()

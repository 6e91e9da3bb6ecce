"""A local OpenAI-compatible server (`transformers serve`) on 127.0.0.1, started and stopped by PID.

The openai: predictor's tests and the concurrency benchmark both need one; it serves a
safetensors folder (not a GGUF) and needs `pip install 'transformers[serving]'`.
"""
from __future__ import annotations

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
    out = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([str(cli), "serve", str(folder), "--host", "127.0.0.1", "--port", str(port),
                             "--device", "cpu", *extra_args], stdout=out, stderr=subprocess.STDOUT)

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
                raise RuntimeError(f"transformers serve exited: {log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"transformers serve not healthy after {ready_timeout:.0f} s: {log_tail()}")
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

"""A small Anthropic Messages API server for tests, with scripted faults.

Run as a process (the tests start it and stop it by PID):
    python tests/_fake_anthropic.py --plan plan.json --log log.jsonl
It prints `PORT <n>` once it listens on 127.0.0.1. It checks what the real API checks and
the predictor must get right: the key (env FAKE_ANTHROPIC_KEY) in `x-api-key` or, as newer
SDKs send it, `authorization: Bearer`; a top-level
`system` string (no system role inside `messages`), alternating roles starting with the user.
It answers each item with a price derived from its text (`len(user text)`.00), so a test can
tell that every reply landed on the right item.

plan.json maps sha256(user text) -> fault, one of:
  ok | 429 | 500 | malformed | empty | timeout   (the first attempt fails, later ones succeed)
  500x<N>                                      (the first N attempts fail with 500)
Every request is appended to the log (JSON lines: key, attempt, fault served, and the request's
`system` and `messages` as received).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TIMEOUT_SLEEP_S = 3.0


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def expected_reply(user_text: str) -> str:
    return f"{len(user_text)}.00"


class State:
    def __init__(self, plan: dict, log_path: str, api_key: str):
        self.plan, self.log_path, self.api_key = plan, log_path, api_key
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()

    def next_attempt(self, key: str) -> int:
        with self.lock:
            self.attempts[key] = self.attempts.get(key, 0) + 1
            return self.attempts[key]

    def log(self, record: dict) -> None:
        with self.lock, open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def fault_for(plan_entry: str, attempt: int) -> str:
    if plan_entry.startswith("500x"):
        return "500" if attempt <= int(plan_entry[4:]) else "ok"
    return plan_entry if attempt == 1 else "ok"


class Handler(BaseHTTPRequestHandler):
    state: State

    def log_message(self, *args):           # quiet: the test reads the JSON log instead
        pass

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _error(self, status: int, kind: str, message: str, headers: dict | None = None) -> None:
        body = {"type": "error", "error": {"type": kind, "message": message}}
        self._send(status, json.dumps(body).encode(), headers)

    def do_POST(self):
        if self.path.rstrip("/") != "/v1/messages":
            return self._error(404, "not_found_error", f"no route {self.path}")
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length))
        except json.JSONDecodeError:
            return self._error(400, "invalid_request_error", "body is not JSON")
        bearer = (self.headers.get("authorization") or "").removeprefix("Bearer ")
        if self.state.api_key not in (self.headers.get("x-api-key"), bearer):
            self.state.log({"key": None, "attempt": 0, "served": "401"})
            return self._error(401, "authentication_error", "invalid x-api-key")
        problem = self._check(body)
        if problem:
            self.state.log({"key": None, "attempt": 0, "served": "400", "problem": problem})
            return self._error(400, "invalid_request_error", problem)
        user_text = body["messages"][0]["content"]
        key = text_key(user_text)
        attempt = self.state.next_attempt(key)
        fault = fault_for(self.state.plan.get(key, "ok"), attempt)
        self.state.log({"key": key, "attempt": attempt, "served": fault, "system": body.get("system"),
                        "messages": body["messages"]})
        if fault == "429":
            return self._error(429, "rate_limit_error", "slow down", {"retry-after": "0"})
        if fault == "500":
            # Real error bodies can echo request data; the predictor must never store a key.
            return self._error(500, "api_error", f"internal error (request key {self.state.api_key})")
        if fault == "malformed":
            return self._send(200, b'{"id": "msg_broken", "content": [{"type": "te')
        if fault == "timeout":
            time.sleep(TIMEOUT_SLEEP_S)
        reply = {"id": f"msg_{key[:12]}_{attempt}", "type": "message", "role": "assistant", "model": body["model"],
                 "content": [{"type": "text", "text": expected_reply(user_text)}], "stop_reason": "end_turn",
                 "stop_sequence": None,
                 "usage": {"input_tokens": len(user_text.split()) + len(body.get("system", "").split()),
                           "output_tokens": 3}}
        if fault == "empty":
            reply["content"] = []
        self._send(200, json.dumps(reply).encode())

    @staticmethod
    def _check(body: dict) -> str | None:
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return f"{name}: field required"
        if "system" in body and not isinstance(body["system"], str):
            return "system: expected a string"
        messages = body["messages"]
        if not messages or messages[0].get("role") != "user":
            return "messages: the first message must use the user role"
        for i, message in enumerate(messages):
            if message.get("role") not in ("user", "assistant"):
                return f"messages.{i}.role: unexpected role {message.get('role')!r} (system goes in `system`)"
            if i and message["role"] == messages[i - 1]["role"]:
                return f"messages.{i}: roles must alternate"
        return None


@contextmanager
def running(plan: dict, folder: Path, api_key: str):
    """This server as a process on 127.0.0.1 with `plan` (written to folder/plan.json): yields
    (base url, the log's path); stopped by PID."""
    (folder / "plan.json").write_text(json.dumps(plan))
    log = folder / "server.jsonl"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--plan", str(folder / "plan.json"),
                             "--log", str(log)], stdout=subprocess.PIPE, text=True,
                            env={"FAKE_ANTHROPIC_KEY": api_key, "PATH": "/usr/bin:/bin"})
    try:
        line = proc.stdout.readline()
        assert line.startswith("PORT "), f"fake server did not start: {line!r}"
        yield f"http://127.0.0.1:{int(line.split()[1])}", log
    finally:
        proc.kill()
        proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plan", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with open(args.plan, encoding="utf-8") as f:
        plan = json.load(f)
    Handler.state = State(plan, args.log, os.environ["FAKE_ANTHROPIC_KEY"])
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

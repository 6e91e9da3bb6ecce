"""What every remote-API predictor shares: keys, concurrency, retries, usage and cost.

A run against a paid API must survive rate limits and flaky servers without losing the
replies it already paid for: each item is asked in a thread pool (bounded concurrency),
retried with exponential backoff on 429 / 5xx / timeouts / malformed replies, and when it
still fails it is recorded as `Reply(raw=None, error=...)`. The runner asks failed items
again on the next invocation of the same run. Keys come only from the environment.
"""
from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import lru_cache
from pathlib import Path
from typing import Iterator


from harness.errors import InputError
from harness.kinds import known_kind
from harness.yamlspec import load_spec
from harness.predictors.base import ModelSpec, Predictor, Reply
from harness.predictors.options import option, runtime, scrub_url
from harness.prompts import Request

PRICES_PATH = Path(__file__).resolve().with_name("prices.yaml")
PRICES_ENV = "PRICEBENCH_PRICES"


class MalformedReply(Exception):
    """The server answered 2xx but not with something we can read: worth another try."""


class FatalRequest(Exception):
    """A request that no retry can fix (bad request, auth, unknown model)."""


def _read_prices(path: str) -> dict:
    """The table, re-read whenever the file changes (users edit it between runs)."""
    try:
        stat = Path(path).stat()
    except OSError as e:
        raise InputError(f"cannot read price table: {e.strerror}", path=path) from None
    return _parse_prices(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _parse_prices(path: str, _mtime_ns: int, _size: int) -> dict:
    try:     # the strict spec loader: no aliases (a user's table could be an alias bomb), no duplicate keys
        data = dict(load_spec(path)) if Path(path).read_bytes().strip() else {}
    except OSError as e:
        raise InputError(f"cannot read price table: {e.strerror}", path=path) from None
    for provider, models in data.items():
        if provider == "unit":
            continue
        if not isinstance(models, dict):
            raise InputError("expected a mapping of model -> {input, output}", path=path, field=str(provider))
        for model, row in models.items():
            if not isinstance(row, dict) or not {"input", "output"} <= set(row):
                raise InputError("expected {input: <$ per 1M tokens>, output: <$ per 1M tokens>}", path=path,
                                 field=f"{provider}.{model}")
            for side in ("input", "output"):
                if isinstance(row[side], bool) or not isinstance(row[side], (int, float)) \
                        or not math.isfinite(row[side]) or row[side] < 0:
                    raise InputError(f"non-numeric price {row[side]!r}", path=path,
                                     field=f"{provider}.{model}.{side}")
    return data


def price_table_path(options: dict) -> Path:
    """Option `prices` > env PRICEBENCH_PRICES > harness/predictors/api/prices.yaml (the shipped table)."""
    return Path(options.get("prices") or os.environ.get(PRICES_ENV) or PRICES_PATH)


def lookup_price(provider: str, model: str, path: Path) -> dict | None:
    """$ per 1M tokens for `model`: exact name, else the longest listed prefix
    (so `claude-3-5-sonnet-20240620` and `ft:gpt-4o-mini:org::id` find their family)."""
    table = _read_prices(str(path)).get(provider) or {}
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name)]
    return table[max(prefixes, key=len)] if prefixes else None


def cost_usd(price: dict | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    if price is None:
        return None
    return (prompt_tokens * price["input"] + completion_tokens * price["output"]) / 1_000_000


def backoff_delay(attempt: int, base: float, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter: base * 2^attempt, capped, times U(0.5, 1)."""
    return min(cap, base * (2 ** attempt)) * random.uniform(0.5, 1.0)


def retry_after(error: Exception, cap: float = 60.0) -> float:
    """Seconds the server asked us to wait (a 429's Retry-After header), else 0."""
    headers = getattr(getattr(error, "response", None), "headers", None) or {}
    try:
        return min(cap, max(0.0, float(headers.get("retry-after", 0))))
    except (TypeError, ValueError):
        return 0.0


class ApiPredictor(Predictor):
    """Base for openai / anthropic: subclasses implement `_client()` and `_ask(client, request)`.

    `_ask` returns (text, prompt_tokens, completion_tokens) or raises (text: what `_reply` turns
    into the item's reply); `_classify` says whether an exception is worth retrying.
    """

    provider = "api"
    key_env = "API_KEY"
    default_prompt = "chat"
    kind = known_kind("frontier")
    quants = ("none",)
    quant_advice = "quantization is the provider's business; use --quant none"

    class Options(Predictor.Options):
        base_url: str | None = option(None, pattern=r"^https?://\S+$", expected="an http(s):// URL",
                                      description="another endpoint (an OpenAI-compatible server, a proxy)")
        max_tokens: int = option(8, ge=1, description="tokens per reply")
        temperature: float = option(0.0, ge=0, le=2)
        prices: str | None = option(None, description="price table path (default $PRICEBENCH_PRICES, then "
                                                      "the shipped table)")
        concurrency: int = runtime(8, ge=1, description="requests in flight")
        max_retries: int = runtime(6, ge=0, description="retries per item (429, 5xx, timeouts, malformed)")
        timeout: float = runtime(60.0, gt=0, description="seconds per request")
        delay: float = runtime(1.0, ge=0, description="first backoff, seconds (doubles, jittered, capped at 60)")
        api_key_env: str | None = runtime(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                          expected="an environment variable name",
                                          description="the variable holding the key")

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        if not spec.target:
            raise InputError(f"{spec.backend}: needs a model name, e.g. {spec.backend}:<model>", field="model")
        options = self.options
        self.model = spec.target
        # The URL as given connects (its userinfo may be the server's credentials); only the
        # scrubbed one is shown or stored (self.spec.options, run_info).
        self._connect_url = options.base_url
        self.base_url = scrub_url(options.base_url) if options.base_url else None
        self.concurrency = options.concurrency
        self.max_retries = options.max_retries
        self.timeout = options.timeout
        self.delay = options.delay
        self.max_tokens = options.max_tokens
        self.temperature = options.temperature
        self.key_env_name = options.api_key_env or self.key_env
        self.prices_path = price_table_path({"prices": options.prices})
        self.price = lookup_price(self.provider, self.model, self.prices_path)
        self._api_key: str | None = None
        self._client_obj = None
        self._stats = {"retries": 0, "failed": 0, "errors": {}}
        self._lock = threading.Lock()
        if self.model.startswith("ft:"):
            self.kind = known_kind("frontier-finetuned")
        elif self.base_url:
            self.kind = known_kind("open-served")

    def label(self) -> str:
        return f"{self.spec.name} (fine-tuned)" if self.kind == known_kind("frontier-finetuned") else self.spec.name

    # -- keys -------------------------------------------------------------------------------
    def _key(self) -> str:
        key = os.environ.get(self.key_env_name)
        if key:
            return key
        if self.base_url:       # local OpenAI-compatible servers (vLLM, transformers, llama.cpp) need none
            return "not-needed"
        raise InputError(f"{self.spec.backend}: no API key: set the environment variable {self.key_env_name} "
                         f"(or pass api_key_env=OTHER_NAME)", field="api_key_env")

    def _scrub(self, text: str) -> str:
        """Error text is stored in predictions.jsonl: make sure a key (or the URL's userinfo)
        can never ride along."""
        if self._api_key and len(self._api_key) >= 4:
            text = text.replace(self._api_key, "***")
        if self._connect_url and self._connect_url != self.base_url:
            text = text.replace(self._connect_url, self.base_url)
            userinfo = self._connect_url.split("://", 1)[-1].split("/", 1)[0].rpartition("@")[0]
            for secret in (userinfo, userinfo.partition(":")[2]):
                if len(secret) >= 4:
                    text = text.replace(secret, "***")
        return text[:500]

    # -- lifecycle ---------------------------------------------------------------------------
    def prepare(self, task) -> None:
        self._api_key = self._key()
        self._client_obj = self._client(self._api_key)

    def close(self) -> None:
        client, self._client_obj = self._client_obj, None
        if client is not None and hasattr(client, "close"):
            client.close()

    def run_info(self) -> dict:
        info = {"provider": self.provider, "concurrency": self.concurrency, "max_retries": self.max_retries,
                "retries": self._stats["retries"], "failed_requests": self._stats["failed"],
                "error_kinds": dict(self._stats["errors"]),
                "price_per_mtok": self.price, "price_table": str(self.prices_path)}
        if self.base_url:
            info["base_url"] = self.base_url
        return info

    # -- the work ----------------------------------------------------------------------------
    def _client(self, api_key: str):
        raise NotImplementedError

    def _ask(self, client, request: Request) -> tuple[str, int, int]:
        raise NotImplementedError

    def _reply(self, text, usage: dict) -> Reply:
        """The reply to one answered request (a subclass may decide one price from several samples)."""
        return Reply(raw=text, usage=usage)

    sdk = None   # the provider's SDK module: openai and anthropic share these exception names

    def _classify(self, error: Exception) -> str | None:
        """A short name of a retryable error (e.g. 'rate-limit'), or None when retrying is pointless."""
        if isinstance(error, self.sdk.APIStatusError):
            return status_kind(error.status_code)
        if isinstance(error, self.sdk.APITimeoutError):
            return "timeout"
        if isinstance(error, self.sdk.APIConnectionError):
            return "connection"
        if isinstance(error, (self.sdk.APIResponseValidationError, json.JSONDecodeError)):
            return "malformed"
        return None

    def _count(self, kind: str, failed: bool) -> None:
        with self._lock:
            self._stats["failed" if failed else "retries"] += 1
            self._stats["errors"][kind] = self._stats["errors"].get(kind, 0) + 1

    def _one(self, request: Request) -> Reply:
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                text, prompt_tokens, completion_tokens = self._ask(self._client_obj, request)
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                         "requests": attempt + 1}
                cost = cost_usd(self.price, prompt_tokens, completion_tokens)
                if cost is not None:
                    usage["cost_usd"] = cost
                reply = self._reply(text, usage)
                reply.latency_s = round(time.perf_counter() - started, 4)
                return reply
            except Exception as error:   # noqa: BLE001 - every failure becomes a per-item record
                kind = "malformed" if isinstance(error, MalformedReply) else self._classify(error)
                if kind is None or attempt >= self.max_retries:
                    what = kind or "fatal"
                    self._count(what, failed=True)
                    body = getattr(error, "body", None)
                    detail = f" {json.dumps(body, default=str)[:300]}" if body and str(body) not in str(error) else ""
                    message = f"{what} after {attempt + 1} attempt(s): {type(error).__name__}: {error}{detail}"
                    return Reply(raw=None, error=self._scrub(message), usage={"requests": attempt + 1},
                                 latency_s=round(time.perf_counter() - started, 4))
                self._count(kind, failed=False)
                time.sleep(max(backoff_delay(attempt, self.delay), retry_after(error)))
                attempt += 1

    def predict(self, requests: list[Request]) -> Iterator[tuple[Request, Reply]]:
        """Replies in completion order, `concurrency` requests in flight at most."""
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=self.provider) as pool:
            futures = {pool.submit(self._one, request): request for request in requests}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            finally:
                for future in futures:
                    future.cancel()

    def predict_batch(self, requests: list[Request]) -> list[Reply]:
        replies = dict((id(r), reply) for r, reply in self.predict(requests))
        return [replies[id(r)] for r in requests]


def status_kind(status: int | None) -> str | None:
    """Retry policy by HTTP status: 408/409/429 and 5xx are transient, other 4xx are not."""
    if status is None:
        return None
    if status == 429:
        return "rate-limit"
    if status in (408, 409):
        return "timeout" if status == 408 else "conflict"
    if status >= 500:
        return f"server-{status}"
    return None

"""`openai:<model>`: the OpenAI API, or any OpenAI-compatible server via option `base_url`.

Chat style (default) sends the task's messages to /v1/chat/completions; base style sends
the completion prompt to /v1/completions (base models behind vLLM serve, transformers serve,
llama.cpp, Ollama). Fine-tuned names (`openai:ft:gpt-4o-mini:org::id`) are just model
names; they are labelled `frontier-finetuned`. Concurrency, retries, cost: see `common`.

`decoding=median|mean` asks for `samples` replies in one request (the API's `n`; `temperature` 1.0
unless given, `seed` 0 unless given, for servers that honour it) and prices the item by their
median / mean (harness/predictors/numeric.py). The usage, and so the cost, counts every sample. A
server that answers fewer choices than asked ignores `n` (transformers serve does): every item of
such a run fails with that said, rather than a median of one.
"""
from __future__ import annotations

from typing import Literal

import openai

from harness.errors import InputError
from harness.predictors.api.common import ApiPredictor, FatalRequest, MalformedReply
from harness.predictors.base import ModelSpec, Reply
from harness.predictors.numeric import (DEFAULT_SAMPLES, DEFAULT_SEED, DEFAULT_TEMPERATURE, SAMPLED,
                                        refuse_stray_options, sampled_reply)
from harness.predictors.options import option
from harness.prompts import Request


class OpenAIPredictor(ApiPredictor):
    provider = "openai"
    sdk = openai
    key_env = "OPENAI_API_KEY"

    class Options(ApiPredictor.Options):
        seed: int | None = option(None, description="sampling seed, where the server honours it")
        decoding: Literal[("greedy", *SAMPLED)] = option("greedy", description="median / mean of `samples` "
                                                         "replies per item (one request with the API's n)")
        samples: int = option(DEFAULT_SAMPLES, ge=1, le=128, description="median / mean: replies per item")

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.seed = self.options.seed
        self.decoding = self.options.decoding
        refuse_stray_options("openai", spec.options, self.decoding, {"samples": SAMPLED})
        if self.decoding in SAMPLED:
            if "temperature" not in (spec.options or {}):
                self.temperature = DEFAULT_TEMPERATURE
            elif self.temperature == 0:
                raise InputError(f"openai: decoding={self.decoding} samples replies: temperature must be above 0",
                                 field="temperature")
            self.seed = DEFAULT_SEED if self.seed is None else self.seed

    def identity(self, task) -> dict:
        """Greedy runs keep their ids; a sampled decoding adds what its samples depend on."""
        if self.decoding not in SAMPLED:
            return {}
        return {"decoding": self.decoding, "n": self.options.samples, "temperature": self.temperature,
                "seed": self.seed}

    def _client(self, api_key: str):
        # Retries are ours (counted, per item, with malformed replies included): the SDK's are off.
        return openai.OpenAI(api_key=api_key, base_url=self._connect_url, timeout=self.timeout, max_retries=0)

    def _params(self) -> dict:
        params = {"model": self.model, "max_tokens": self.max_tokens, "temperature": self.temperature}
        if self.seed is not None:
            params["seed"] = int(self.seed)
        if self.decoding in SAMPLED:
            params["n"] = self.options.samples
        return params

    def _ask(self, client, request: Request) -> tuple[str | list[str], int, int]:
        if request.style == "chat":
            response = client.chat.completions.create(messages=[dict(m) for m in request.messages], **self._params())
            texts = [getattr(choice.message, "content", None) for choice in _in_order(response)]
        else:
            response = client.completions.create(prompt=request.prompt, **self._params())
            texts = [choice.text for choice in _in_order(response)]
        if not texts or not all(isinstance(text, str) for text in texts):
            raise MalformedReply(f"no text in reply: {str(response)[:200]}")
        usage = getattr(response, "usage", None)
        tokens = int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)
        if self.decoding not in SAMPLED:
            return texts[0], *tokens
        if len(texts) != self.options.samples:
            why = "it ignores n" if len(texts) < self.options.samples else "it does not honour n"
            raise FatalRequest(f"asked for n={self.options.samples} samples, the server answered {len(texts)}: "
                               f"{why}, so decoding={self.decoding} cannot run against it")
        return texts, *tokens

    def _reply(self, text, usage: dict) -> Reply:
        return sampled_reply(text, self.decoding, usage) if self.decoding in SAMPLED else super()._reply(text, usage)


def _in_order(response) -> list:
    """The reply's choices by their index (the order the samples are stored in)."""
    return sorted(response.choices or [], key=lambda choice: getattr(choice, "index", 0) or 0)


def create(spec: ModelSpec) -> OpenAIPredictor:
    return OpenAIPredictor(spec)


PREDICTOR = OpenAIPredictor

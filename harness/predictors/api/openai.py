"""`openai:<model>`: the OpenAI API, or any OpenAI-compatible server via option `base_url`.

Chat style (default) sends the task's messages to /v1/chat/completions; base style sends
the completion prompt to /v1/completions (base models behind vLLM serve, transformers serve,
llama.cpp, Ollama). Fine-tuned names (`openai:ft:gpt-4o-mini:org::id`) are just model
names; they are labelled `frontier-finetuned`. Concurrency, retries, cost: see `_api`.
"""
from __future__ import annotations

import openai

from harness.predictors.api.common import ApiPredictor, MalformedReply
from harness.predictors.base import ModelSpec
from harness.predictors.options import option
from harness.prompts import Request


class OpenAIPredictor(ApiPredictor):
    provider = "openai"
    sdk = openai
    key_env = "OPENAI_API_KEY"

    class Options(ApiPredictor.Options):
        seed: int | None = option(None, description="sampling seed, where the server honours it")

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.seed = self.options.seed

    def _client(self, api_key: str):
        # Retries are ours (counted, per item, with malformed replies included): the SDK's are off.
        return openai.OpenAI(api_key=api_key, base_url=self._connect_url, timeout=self.timeout, max_retries=0)

    def _params(self) -> dict:
        params = {"model": self.model, "max_tokens": self.max_tokens, "temperature": self.temperature}
        if self.seed is not None:
            params["seed"] = int(self.seed)
        return params

    def _ask(self, client, request: Request) -> tuple[str, int, int]:
        if request.style == "chat":
            response = client.chat.completions.create(messages=[dict(m) for m in request.messages], **self._params())
            text = response.choices[0].message.content if response.choices else None
        else:
            response = client.completions.create(prompt=request.prompt, **self._params())
            text = response.choices[0].text if response.choices else None
        if not isinstance(text, str):
            raise MalformedReply(f"no text in reply: {str(response)[:200]}")
        usage = getattr(response, "usage", None)
        return text, int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)


def create(spec: ModelSpec) -> OpenAIPredictor:
    return OpenAIPredictor(spec)


PREDICTOR = OpenAIPredictor

"""`anthropic:<model>`: the Anthropic Messages API (Claude).

The task's system prompt goes in `system`; the course's assistant prefix ("Price is $") is
sent as a prefilled assistant turn so Claude continues it with a number (option
`prefill=false` drops it, for models that refuse prefills). Option `base_url` points the
SDK at another Messages-API server. Concurrency, retries, cost: see `_api`.
"""
from __future__ import annotations

import anthropic

from harness.kinds import known_kind
from harness.predictors.api.common import ApiPredictor, MalformedReply
from harness.predictors.base import ModelSpec
from harness.predictors.options import option
from harness.prompts import Request


class AnthropicPredictor(ApiPredictor):
    provider = "anthropic"
    sdk = anthropic
    key_env = "ANTHROPIC_API_KEY"
    prompts = (None, "chat")
    prompt_advice = "the Messages API takes chat prompts only; use --prompt chat"

    class Options(ApiPredictor.Options):
        temperature: float | None = option(None, ge=0, le=1, description="the provider's default unless given")
        prefill: bool = option(True, description="send the assistant prefix 'Price is $' as a prefilled turn")

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.prefill = self.options.prefill
        self.temperature = self.options.temperature   # provider default unless given
        if self.base_url and not self.model.startswith("ft:"):
            self.kind = known_kind("frontier")      # a Messages-API endpoint elsewhere still serves Claude

    def _client(self, api_key: str):
        return anthropic.Anthropic(api_key=api_key, base_url=self._connect_url, timeout=self.timeout, max_retries=0)

    def _ask(self, client, request: Request) -> tuple[str, int, int]:
        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        turns = [{"role": m["role"], "content": m["content"]} for m in request.messages if m["role"] != "system"]
        if turns and turns[-1]["role"] == "assistant" and not self.prefill:
            turns.pop()
        params = {"model": self.model, "max_tokens": self.max_tokens, "messages": turns}
        if system:
            params["system"] = system
        if self.temperature is not None:
            # Newer SDKs dropped `temperature` from create() (newer models fix sampling);
            # older models still take it in the body.
            params["extra_body"] = {"temperature": self.temperature}
        response = client.messages.create(**params)
        texts = [block.text for block in (response.content or []) if getattr(block, "type", None) == "text"]
        if not texts:
            raise MalformedReply(f"no text block in reply: {str(response)[:200]}")
        usage = response.usage
        return "".join(texts), int(usage.input_tokens or 0), int(usage.output_tokens or 0)


def create(spec: ModelSpec) -> AnthropicPredictor:
    return AnthropicPredictor(spec)


PREDICTOR = AnthropicPredictor

"""How shots enter a prompt, the same for every backend (hf, vllm, openai, anthropic).

Base prompt: each shot as a completed prompt (the task's question and text, then the price to the
dollar as the course's training prompts wrote it, `Price is $X.00`), then the asked item's prompt;
the parts joined by a blank line. That is lm-eval's few-shot layout with target_delimiter "" and
fewshot_delimiter "\\n\\n".

Chat prompt: the course's RAG message (week 8's frontier agent, word for word): the task's system
message; one user message "To provide some context, ..." listing each shot as "Potentially related
product:" with its price to the cent, then "And now the question for you:" and the task's own
user message; the assistant's turn started with the task's prefix ("Price is $"). With
`shot_format: turns`, each shot is instead a user turn (the task's user message) answered by an
assistant turn (prefix and price), before the asked item.
"""
from __future__ import annotations

from harness.data import Item

CONTEXT = ("To provide some context, here are some other items that might be similar to the item you need to "
           "estimate.\n\n")
QUESTION = "And now the question for you:\n\n"
SEPARATOR = "\n\n"


def shot_answer(price: float) -> str:
    """A base-prompt example's completion: the course's training prompts rounded to the dollar."""
    return f"{round(price)}.00"


def base_prompt(render, template: str, asked: Item, shots) -> str:
    """`render(template, item)` is prompts.render_base; `shots` hold items already cut like the asked one."""
    parts = [render(template, shot.item) + shot_answer(shot.item.price) for shot in shots]
    return SEPARATOR.join(parts + [render(template, asked)])


def chat_messages(template: dict, asked: Item, shots, shot_format: str = "message") -> list[dict]:
    messages = [{"role": "system", "content": template["system"]}] if template.get("system") else []
    question = template["user"].replace("{text}", asked.text)
    prefix = template.get("assistant_prefix") or ""
    if shot_format == "turns":
        for shot in shots:
            messages.append({"role": "user", "content": template["user"].replace("{text}", shot.item.text)})
            messages.append({"role": "assistant", "content": f"{prefix}{shot.item.price:.2f}"})
        messages.append({"role": "user", "content": question})
    else:
        context = "".join(f"Potentially related product:\n{shot.item.text}\nPrice is ${shot.item.price:.2f}\n\n"
                          for shot in shots)
        messages.append({"role": "user", "content": CONTEXT + context + QUESTION + question})
    if prefix:
        messages.append({"role": "assistant", "content": prefix})
    return messages

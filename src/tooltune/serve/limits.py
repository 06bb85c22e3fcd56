"""What a chat request may ask of the server, checked before the model is touched.

Tool schemas pass :mod:`tooltune.tools.schema_rules` (depth, size, properties, enum values, local
``$ref`` only) when the request's tools are read; here: how many tools, and whether the rendered
prompt fits the model's context. A prompt that does not fit is a 400 saying by how many tokens it
is over, answered before the generation lock is taken, instead of a generation that holds the
model for every other caller and then fails or truncates.
"""

from __future__ import annotations

from typing import Any

from tooltune.serve.schemas import ChatRequest, RequestError

MAX_TOOLS = 128
"""Tools one request may offer (OpenAI's own limit)."""


def check_tool_count(request: ChatRequest) -> None:
    if request.tools and len(request.tools) > MAX_TOOLS:
        raise RequestError("tools", f"{len(request.tools)} tools offered; at most {MAX_TOOLS} per request. "
                                    "Offer only the tools this conversation needs.")


def context_length(loaded: Any) -> int | None:
    """The model's context in tokens (``max_position_embeddings``), or ``None`` when it cannot say."""
    config = getattr(loaded.model, "config", None)
    if config is not None:
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        value = getattr(text, "max_position_embeddings", None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(loaded.tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 10**8 else None  # transformers' "unset" is 1e30


def fit_to_context(loaded: Any, prompt: str, max_new_tokens: int, *, tools: int) -> int:
    """``max_new_tokens``, lowered so that prompt and completion fit the context; a prompt that
    leaves no room raises :class:`RequestError` naming the overshoot."""
    context = context_length(loaded)
    if context is None:
        return max_new_tokens
    prompt_tokens = len(loaded.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    if prompt_tokens >= context:
        over = prompt_tokens - context + 1
        offered = f" and {tools} tools" if tools else ""
        raise RequestError("messages", f"the prompt (messages{offered}) renders to {prompt_tokens} tokens, over the "
                                       f"model's context of {context} tokens by {over} (one token must be left to "
                                       "answer). Send fewer or shorter messages or tools.", code="context_length_exceeded")
    return min(max_new_tokens, context - prompt_tokens)

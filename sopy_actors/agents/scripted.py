"""ScriptedModel: the offline, deterministic strands `Model` that plays a script.

A script is a list of steps. A step `{"tool": name, "input": {...}}` makes a tool call; a str
step is a final answer. In answers, `{result}` stands for the text of the last tool result; in
answers and in string values of tool inputs, `{prompt}` stands for the last user prompt (so one
script can serve many callers: `{"tool": "save", "input": {"path": "{prompt}/out.txt"}}`).
Step i is played when the conversation holds i assistant messages, so the model keeps no state
of its own: one instance serves every conversation of an agent actor, and a conversation
restored from its session continues where it stopped. Past the end, the last step repeats.

Token usage is counted deterministically (one token per four characters, at least one), so
metrics carry real numbers offline.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from strands.models.model import Model
from strands.types.exceptions import StructuredOutputException

from sopy_actors.errors import InputError

__all__ = ["DEFAULT_SCRIPT", "ScriptedModel", "validate_steps"]

Step = str | dict[str, Any]

_PLACEHOLDER = re.compile(r"\{result\}|\{prompt\}")

DEFAULT_SCRIPT: tuple[Step, ...] = (
    (
        "[offline scripted model: no model is configured; set SOPY_MODEL (for example "
        "'openai:gpt-4o-mini') to use a real LLM] Received: {prompt}"
    ),
)
"""What an agent answers when no model is configured: it says so, and echoes the prompt."""


def validate_steps(steps: Any, field: str = "steps") -> tuple[Step, ...]:
    """Check a script and return it as a tuple.

    Raises:
        InputError: the script is empty or a step is neither a str nor
            `{"tool": str, "input": dict}`; the message names the step.
    """
    if isinstance(steps, str | bytes) or not isinstance(steps, Sequence) or not steps:
        raise InputError(f"Invalid {field}: expected a non-empty list of steps", fields=(field,))
    checked: list[Step] = []
    for index, step in enumerate(steps):
        where = f"{field}[{index}]"
        if isinstance(step, str):
            checked.append(step)
            continue
        if (
            not isinstance(step, dict)
            or set(step) - {"tool", "input"}
            or not isinstance(step.get("tool"), str)
            or not step["tool"]
            or not isinstance(step.get("input", {}), dict)
        ):
            raise InputError(
                f"Invalid {where}: expected a str (final text) or {{'tool': name, 'input': {{...}}}}, "
                f"got {step!r}",
                fields=(where,),
            )
        checked.append({"tool": step["tool"], "input": dict(step.get("input", {}))})
    return tuple(checked)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _texts(content: list[dict[str, Any]]) -> list[str]:
    texts = []
    for block in content:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            texts.append(json.dumps(block["toolUse"].get("input", {})))
        elif "toolResult" in block:
            texts.extend(_texts(block["toolResult"].get("content", [])))
    return texts


def _last_tool_result(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        for block in message.get("content", []):
            if "toolResult" in block:
                return "\n".join(_texts(block["toolResult"].get("content", [])))
    return ""


def _last_prompt(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            texts = [block["text"] for block in message.get("content", []) if "text" in block]
            if texts:
                return "\n".join(texts)
    return ""


def _fill(text: str, messages: list[dict[str, Any]]) -> str:
    """A str step with `{result}` and `{prompt}` filled in, in one pass (a tool result that
    itself contains "{prompt}" stays as it is)."""
    values = {"{result}": _last_tool_result(messages), "{prompt}": _last_prompt(messages)}
    return _PLACEHOLDER.sub(lambda match: values[match.group(0)], text)


class ScriptedModel(Model):
    """A strands `Model` that plays a fixed script of tool calls and answers; no network.

    Args:
        steps: the script (see the module docstring).

    Raises:
        InputError: the script is malformed.
    """

    def __init__(self, steps: Sequence[Step], **config: Any) -> None:
        self.steps = validate_steps(steps)
        self.config: dict[str, Any] = dict(config)

    def update_config(self, **model_config: Any) -> None:
        """Merge settings into the model's config (kept, not used)."""
        self.config.update(model_config)

    def get_config(self) -> dict[str, Any]:
        """The model's config."""
        return self.config

    async def structured_output(
        self, output_model: Any, prompt: Any, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Play this point's step as `output_model`: a tool step's input, or a str step as JSON.

        Raises:
            StructuredOutputException: the step does not validate as `output_model`.
        """
        messages = list(prompt)
        step = self._step(messages)
        try:
            data = step["input"] if isinstance(step, dict) else json.loads(_fill(step, messages))
            output = output_model.model_validate(data)
        except (ValueError, TypeError) as error:  # bad JSON or a pydantic ValidationError
            raise StructuredOutputException(
                f"scripted step is not a valid {output_model.__name__}: {error}"
            ) from error
        yield {"output": output}

    def _step(self, messages: list[dict[str, Any]]) -> Step:
        """The step for this point: step i once the conversation holds i assistant messages."""
        index = sum(1 for message in messages if message.get("role") == "assistant")
        return self.steps[min(index, len(self.steps) - 1)]

    async def stream(  # type: ignore[override]  # plain dicts: strands' TypedDicts are dicts
        self,
        messages: list[dict[str, Any]],
        tool_specs: list[dict[str, Any]] | None = None,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Stream the step for this point of the conversation as strands stream events."""
        index = sum(1 for message in messages if message.get("role") == "assistant")
        step = self._step(messages)
        seen = [system_prompt or ""] + [t for m in messages for t in _texts(m.get("content", []))]
        input_tokens = _tokens("".join(seen))
        yield {"messageStart": {"role": "assistant"}}
        prompt = _last_prompt(messages)
        if isinstance(step, dict):
            tool_input = {
                key: value.replace("{prompt}", prompt) if isinstance(value, str) else value
                for key, value in step["input"].items()
            }
            arguments = json.dumps(tool_input)
            start = {"toolUse": {"toolUseId": f"scripted-{index}", "name": step["tool"]}}
            yield {"contentBlockStart": {"start": start}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": arguments}}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "tool_use"}}
            output_tokens = _tokens(step["tool"] + arguments)
        else:
            text = _fill(step, messages)
            yield {"contentBlockDelta": {"delta": {"text": text}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "end_turn"}}
            output_tokens = _tokens(text)
        usage = {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        }
        yield {"metadata": {"usage": usage, "metrics": {"latencyMs": 0}}}

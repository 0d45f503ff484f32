"""Model configuration as data, and the one factory that turns it into a strands model.

An agent's model is chosen by configuration, never by editing code:

- `model=None`: `$SOPY_MODEL` if set, else the offline `ScriptedModel` playing its default
  script (it answers that no model is configured and echoes the prompt). The agent actor logs
  a warning when it builds that default.
- `model="provider:name"`: `bedrock:<model id>`, `openai:<model>`, `anthropic:<model>`,
  `ollama:<model>`, `llamacpp:<server url>`, `litellm:<provider/model>`, or `scripted`.
- `model=ScriptedModel([...])`: an offline script (stored as its steps).
- `model=ModelConfig(...)`: everything explicit.

A provider string (argument or `$SOPY_MODEL`) takes its other settings from the environment:

| variable | meaning |
|---|---|
| `SOPY_MODEL` | the provider string used when `model` is None |
| `SOPY_MODEL_BASE_URL` | server URL: OpenAI-compatible base URL (`http://host:8000/v1`), Ollama host |
| `SOPY_MODEL_API_KEY_ENV` | name of the environment variable that holds the API key (the key itself never enters the spec) |
| `SOPY_MODEL_REGION` | AWS region for Bedrock |
| `SOPY_MODEL_PARAMS` | JSON object of model parameters (`{"temperature": 0, "max_tokens": 1024}`) |

These are read on the driver when the spec is built; the key is read inside the agent actor,
from the environment of the cluster's processes (export it where the driver of a local cluster
runs, or on every node before `ray start`): never put it in code or checkpoints. A provider whose strands extra is
not installed is refused when the spec is built, with the `pip install` command to run
(`InputError` on field `model`). Building a model never contacts the network.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sopy_actors.errors import InputError

__all__ = ["PROVIDERS", "ModelConfig", "build_model", "model_config_from"]

logger = logging.getLogger(__name__)

Provider = Literal["scripted", "bedrock", "openai", "anthropic", "ollama", "llamacpp", "litellm"]

PROVIDERS: dict[str, tuple[str, str, str | None, str | None]] = {
    # provider -> (module under strands.models, class, strands extra, module the extra installs)
    "bedrock": ("bedrock", "BedrockModel", None, None),
    "openai": ("openai", "OpenAIModel", "openai", "openai"),
    "anthropic": ("anthropic", "AnthropicModel", "anthropic", "anthropic"),
    "ollama": ("ollama", "OllamaModel", "ollama", "ollama"),
    "llamacpp": ("llamacpp", "LlamaCppModel", None, None),
    "litellm": ("litellm", "LiteLLMModel", "litellm", "litellm"),
}


class ModelConfig(BaseModel):
    """Which model an agent uses, as plain data (part of `AgentSpec`, so part of its identity).

    Attributes:
        provider: "scripted" (offline) or a real provider.
        model_id: the provider's model name (for llamacpp optional).
        base_url: server URL (OpenAI-compatible base URL, Ollama host, llama.cpp server).
        api_key_env: name of the environment variable holding the API key.
        region: AWS region (Bedrock).
        params: model parameters passed to the provider (temperature, max_tokens, ...).
        steps: the script of the offline model; None plays the default script.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Provider = "scripted"
    model_id: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    region: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    steps: tuple[str | dict[str, Any], ...] | None = None

    @field_validator("steps", mode="before")
    @classmethod
    def _check_steps(cls, steps: Any) -> Any:
        from sopy_actors.agents.scripted import validate_steps

        return None if steps is None else validate_steps(steps, "model.steps")

    def describe(self) -> str:
        """Short text for logs: provider and model, never a key."""
        if self.provider == "scripted":
            return "scripted (offline, default script)" if self.steps is None else "scripted (offline)"
        return f"{self.provider}:{self.model_id or self.base_url or ''}"


def _from_string(text: str) -> ModelConfig:
    provider, _, name = text.strip().partition(":")
    if provider == "scripted":
        return ModelConfig()
    if provider not in PROVIDERS:
        raise InputError(
            f"Invalid model {text!r}: unknown provider {provider!r}; use one of "
            f"{', '.join(['scripted', *PROVIDERS])} as 'provider:model'",
            fields=("model",),
        )
    if not name and provider != "llamacpp":
        raise InputError(f"Invalid model {text!r}: write '{provider}:<model>'", fields=("model",))
    params_text = os.environ.get("SOPY_MODEL_PARAMS", "")
    try:
        params = json.loads(params_text) if params_text else {}
    except json.JSONDecodeError as error:
        raise InputError(f"SOPY_MODEL_PARAMS is not JSON: {error}", fields=("model",)) from None
    if not isinstance(params, dict):
        raise InputError("SOPY_MODEL_PARAMS must be a JSON object", fields=("model",))
    base_url = os.environ.get("SOPY_MODEL_BASE_URL") or None
    model_id: str | None = name or None
    if provider == "llamacpp":
        base_url, model_id = name or base_url, None
    return ModelConfig(
        provider=provider,
        model_id=model_id,
        base_url=base_url,
        api_key_env=os.environ.get("SOPY_MODEL_API_KEY_ENV") or None,
        region=os.environ.get("SOPY_MODEL_REGION") or None,
        params=params,
    )


def _check_extra(config: ModelConfig) -> None:
    if config.provider == "scripted":
        return
    _, _, extra, module = PROVIDERS[config.provider]
    if module is not None and importlib.util.find_spec(module) is None:
        raise InputError(
            f"Model provider {config.provider!r} needs the strands extra {extra!r}, which is not "
            f"installed here: run  pip install 'strands-agents[{extra}]'",
            fields=("model",),
        )


def model_config_from(value: Any) -> ModelConfig:
    """The ModelConfig for `model=` (None, str, ScriptedModel, ModelConfig or its dict).

    Runs where the spec is built (the driver); reads `$SOPY_MODEL*` for None and strings.

    Raises:
        InputError: (field `model`) unknown provider, malformed value, or a provider whose
            strands extra is not installed (the message gives the pip command).
    """
    from sopy_actors.agents.scripted import ScriptedModel

    if value is None:
        value = os.environ.get("SOPY_MODEL") or ModelConfig()
    if isinstance(value, ScriptedModel):
        config = ModelConfig(steps=value.steps)
    elif isinstance(value, str):
        config = _from_string(value)
    elif isinstance(value, ModelConfig):
        config = value
    elif isinstance(value, dict):
        config = ModelConfig.model_validate(value)
    else:
        raise InputError(
            f"Invalid model: expected None, 'provider:model', a ScriptedModel or a ModelConfig, "
            f"got {type(value).__name__}",
            fields=("model",),
        )
    _check_extra(config)
    return config


def _api_key(config: ModelConfig) -> str | None:
    if config.api_key_env is None:
        return None
    key = os.environ.get(config.api_key_env)
    if key is None:
        raise InputError(
            f"Environment variable {config.api_key_env} (api_key_env) is not set in the agent "
            "actor's process; export it in the environment of the cluster's processes (where the "
            "driver of a local cluster runs, or on every node before `ray start`)",
            fields=("model.api_key_env",),
        )
    return key


def _arguments(config: ModelConfig) -> dict[str, Any]:
    key = _api_key(config)
    params = dict(config.params)
    if config.provider == "bedrock":
        arguments: dict[str, Any] = {"model_id": config.model_id, **params}
        if config.region:
            arguments["region_name"] = config.region
        if key:
            arguments["api_key"] = key
        return arguments
    if config.provider in ("openai", "litellm", "anthropic"):
        client_args: dict[str, Any] = {}
        if key:
            client_args["api_key"] = key
        elif config.base_url and config.provider == "openai":
            client_args["api_key"] = "not-needed"  # local OpenAI-compatible servers take any key
        if config.base_url:
            client_args["base_url"] = config.base_url
        if config.provider == "anthropic":
            return {
                "client_args": client_args,
                "model_id": config.model_id,
                "max_tokens": int(params.pop("max_tokens", 1024)),
                "params": params,
            }
        return {"client_args": client_args, "model_id": config.model_id, "params": params}
    if config.provider == "ollama":
        return {"host": config.base_url, "model_id": config.model_id, **params}
    arguments = {"base_url": config.base_url or "http://localhost:8080", "params": params}
    return arguments | ({"model_id": config.model_id} if config.model_id else {})


def build_model(config: ModelConfig, *, agent: str) -> Any:
    """Build the strands model for `config`; runs inside the agent actor, once per actor.

    Raises:
        InputError: the provider's extra is missing here or the API key variable is unset.
    """
    from sopy_actors.agents.scripted import DEFAULT_SCRIPT, ScriptedModel

    if config.provider == "scripted":
        if config.steps is None:
            logger.warning(
                "agent=<%s> | no model configured: using the OFFLINE SCRIPTED MODEL (default "
                "script); set SOPY_MODEL or model= to use a real LLM",
                agent,
            )
            return ScriptedModel(DEFAULT_SCRIPT)
        logger.info("agent=<%s> | using the offline scripted model (%d steps)", agent, len(config.steps))
        return ScriptedModel(config.steps)
    _check_extra(config)
    module, cls, _, _ = PROVIDERS[config.provider]
    model_class = getattr(importlib.import_module(f"strands.models.{module}"), cls)
    logger.info("agent=<%s>, model=<%s> | building model", agent, config.describe())
    return model_class(**_arguments(config))

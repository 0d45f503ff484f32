"""Model configuration: provider strings, environment, missing extras, offline default."""

from __future__ import annotations

import importlib.util
import logging

import pytest

from sopy_actors import ScriptedModel
from sopy_actors.agents import AgentSpec, ModelConfig
from sopy_actors.agents.providers import build_model, model_config_from
from sopy_actors.errors import InputError

_ENV = ("SOPY_MODEL", "SOPY_MODEL_BASE_URL", "SOPY_MODEL_API_KEY_ENV", "SOPY_MODEL_REGION", "SOPY_MODEL_PARAMS")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_no_model_configured_means_the_offline_default_script() -> None:
    assert model_config_from(None) == ModelConfig(provider="scripted", steps=None)


def test_provider_strings_are_parsed_with_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPY_MODEL_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("SOPY_MODEL_API_KEY_ENV", "MY_KEY")
    monkeypatch.setenv("SOPY_MODEL_PARAMS", '{"temperature": 0}')
    config = model_config_from("openai:gpt-4o-mini")
    assert config == ModelConfig(
        provider="openai", model_id="gpt-4o-mini", base_url="http://127.0.0.1:8000/v1",
        api_key_env="MY_KEY", params={"temperature": 0},
    )


def test_sopy_model_is_used_when_model_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPY_MODEL", "bedrock:anthropic.claude-x")
    monkeypatch.setenv("SOPY_MODEL_REGION", "eu-west-1")
    spec = AgentSpec(name="a")
    assert spec.model == ModelConfig(provider="bedrock", model_id="anthropic.claude-x", region="eu-west-1")


def test_llamacpp_takes_a_server_url() -> None:
    config = model_config_from("llamacpp:http://127.0.0.1:8080")
    assert (config.provider, config.base_url, config.model_id) == ("llamacpp", "http://127.0.0.1:8080", None)


@pytest.mark.parametrize("text", ["gpt-4o", "openai:", "mystery:model"])
def test_bad_provider_strings_are_input_errors_on_model(text: str) -> None:
    with pytest.raises(InputError) as caught:
        model_config_from(text)
    assert caught.value.fields == ("model",)


def test_a_provider_whose_extra_is_missing_fails_at_configuration_with_the_pip_command() -> None:
    missing = [p for p in ("litellm", "ollama", "anthropic") if importlib.util.find_spec(p) is None]
    if not missing:
        pytest.skip("every optional provider is installed here")
    provider = missing[0]
    with pytest.raises(InputError) as caught:
        AgentSpec(name="a", model=f"{provider}:some-model")
    assert caught.value.fields == ("model",)
    assert f"pip install 'strands-agents[{provider}]'" in str(caught.value)


def test_building_the_default_model_warns_that_the_offline_model_is_used(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sopy_actors.agents.providers"):
        model = build_model(ModelConfig(), agent="writer")
    assert isinstance(model, ScriptedModel)
    assert any("OFFLINE SCRIPTED MODEL" in r.getMessage() and "writer" in r.getMessage() for r in caplog.records)


def test_an_openai_compatible_model_is_built_without_network() -> None:
    pytest.importorskip("openai")
    from strands.models.openai import OpenAIModel

    config = model_config_from("openai:local-model").model_copy(update={"base_url": "http://127.0.0.1:1/v1"})
    model = build_model(config, agent="a")
    assert isinstance(model, OpenAIModel)
    assert model.get_config()["model_id"] == "local-model"
    assert model.client_args == {"api_key": "not-needed", "base_url": "http://127.0.0.1:1/v1"}


def test_a_missing_api_key_variable_is_reported_by_name() -> None:
    config = ModelConfig(provider="bedrock", model_id="m", api_key_env="SOPY_TEST_UNSET_KEY")
    with pytest.raises(InputError, match="SOPY_TEST_UNSET_KEY"):
        build_model(config, agent="a")

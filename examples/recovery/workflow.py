"""Multi-level recovery, declared: retry with backoff, a circuit breaker, a fallback service, a person.

A digest SOP summarises documents one event at a time. Its summariser agent's tool calls a
real HTTP summary service on 127.0.0.1 (`services.py`). The handler insists that the tool
worked (`AgentResult.raise_for_tool_errors()`), so a failing service becomes a recovery cause:

- `Summarising` retries a failing call with exponential backoff (a durable timer each time);
  the tool's circuit breaker opens after three failures, calls then fail fast with
  `CircuitOpen`, and the ladder skips the remaining retries and falls back;
- `SummarisingWithBackup` takes over the failed document with a second agent and service; when
  that one dies too, its retries run out and a `Manual` step parks the SOP until a person
  resolves it: with the summary written by hand (an event), or retry, or abort.

Tools live at the top level of this module: agent actors import them by name (`sopy-actors
run` ships this directory to the cluster).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

from pydantic import BaseModel, Field

from sopy_actors import (
    SOP,
    Backoff,
    BreakerSettings,
    End,
    Event,
    Fallback,
    Manual,
    Procedure,
    RecoveryPolicy,
    Retry,
    handler,
    make_prompt,
    tool,
)
from sopy_actors.agents import ScriptedModel, StrandsAgent


def _fetch(request: str) -> str:
    """GET the summary from the service named in `request` (JSON: url, text)."""
    data = json.loads(request)
    query = urllib.parse.urlencode({"text": data["text"]})
    try:
        with urllib.request.urlopen(f"{data['url']}/summarise?{query}", timeout=5) as response:
            return str(json.loads(response.read())["summary"])
    except urllib.error.HTTPError as error:
        raise ConnectionError(f"{data['url']} answered {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        raise ConnectionError(f"{data['url']} is unreachable: {error.reason}") from error


@tool
def fetch_summary(request: str) -> str:
    """Summarise a text with the primary summary service (request: JSON with url and text)."""
    return _fetch(request)


@tool
def fetch_backup_summary(request: str) -> str:
    """Summarise a text with the backup summary service (request: JSON with url and text)."""
    return _fetch(request)


# Three failures within a minute open a tool's circuit; after 5 s one probe call is let through.
TOOL_BREAKER = BreakerSettings(failure_threshold=3, window=60, cool_down=5)

SUMMARISER = StrandsAgent(
    tools=[fetch_summary],
    model=ScriptedModel([{"tool": "fetch_summary", "input": {"request": "{prompt}"}}, "{result}"]),
    system_prompt="Summarise the text you are given with the fetch_summary tool.",
    name="summariser",
    tool_breakers={"fetch_summary": TOOL_BREAKER},
)
BACKUP_SUMMARISER = StrandsAgent(
    tools=[fetch_backup_summary],
    model=ScriptedModel([{"tool": "fetch_backup_summary", "input": {"request": "{prompt}"}}, "{result}"]),
    system_prompt="Summarise the text you are given with the fetch_backup_summary tool.",
    name="backup-summariser",
    tool_breakers={"fetch_backup_summary": TOOL_BREAKER},
)


class Digest(BaseModel):
    primary_url: str
    backup_url: str
    documents: list[str]
    summaries: dict[str, str] = Field(default_factory=dict)


class Summarise(Event[str]):
    """Summarise this document."""


class HandSummary(BaseModel):
    text: str
    summary: str


class SummaryWritten(Event[HandSummary]):
    """A person wrote the summary of a document."""


def _summarise(agent: StrandsAgent, url: str, state: Digest, text: str) -> None:
    # A conversation of its own per call: each call plays the agent's script from the start.
    result = agent(json.dumps({"url": url, "text": text}), conversation=f"summary-{uuid.uuid4().hex}")
    result.raise_for_tool_errors()  # the model answered around a failed tool: that is a failure here
    state.summaries[text] = result.text


def _done(state: Digest) -> bool:
    return len(state.summaries) == len(state.documents)


class SummarisingWithBackup(Procedure[Digest]):
    prompt = make_prompt("Summarise each document with the backup summary service.")
    sop_recovery = RecoveryPolicy(
        rungs=[
            Retry(max_attempts=2, backoff=Backoff(initial=0.2, multiplier=2.0, cap=1.0, jitter=0.2)),
            Manual(
                reason="Both summary services are down: write the summary by hand (a SummaryWritten event), or abort",
                choices=["retry", "abort"],
            ),
        ]
    )

    @handler
    def on_summarise(self, state: Digest, event: Summarise) -> Procedure[Digest]:
        _summarise(BACKUP_SUMMARISER, state.backup_url, state, event.payload)
        return End() if _done(state) else self

    @handler
    def on_written(self, state: Digest, event: SummaryWritten) -> Procedure[Digest]:
        state.summaries[event.payload.text] = f"by hand: {event.payload.summary}"
        return End() if _done(state) else self


class Summarising(Procedure[Digest]):
    prompt = make_prompt("Summarise each document with the primary summary service.")
    sop_recovery = RecoveryPolicy(
        rungs=[
            Retry(max_attempts=4, backoff=Backoff(initial=0.2, multiplier=2.0, cap=2.0, jitter=0.2)),
            Fallback(to=SummarisingWithBackup),
            Manual(reason="The summary services keep failing", choices=["retry", "skip", "abort"]),
        ]
    )

    @handler
    def on_summarise(self, state: Digest, event: Summarise) -> Procedure[Digest]:
        _summarise(SUMMARISER, state.primary_url, state, event.payload)
        return End() if _done(state) else self


def digest_sop(primary_url: str, backup_url: str, documents: list[str]) -> SOP[Digest]:
    """The SOP: summarise `documents` with the primary service, falling back to the backup."""
    return SOP(Digest(primary_url=primary_url, backup_url=backup_url, documents=documents), Summarising())


def default_sop() -> SOP[Digest]:
    """The SOP with placeholder addresses, for `sopy-actors graph` and `check`."""
    return digest_sop("http://127.0.0.1:1", "http://127.0.0.1:2", ["a document"])

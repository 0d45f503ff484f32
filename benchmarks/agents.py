"""Agent call overhead against the same strands Agent in a bare Ray actor; prints one JSON line.

    python benchmarks/agents.py [--calls 40] [--conversations 64]

Every side runs the same offline script (one tool call, then an answer) on a fresh conversation
per call, measured in the same run; the baselines are the same strands Agent (built for the
call) called directly in this process, and in a bare Ray actor:
- latency: one call, driver -> answer; every side in turns, `--calls` each (median).
  Framework: `StrandsAgent(...)(prompt, sop=handle)` (handle -> AgentActor -> strands -> guard:
  ToolUseRequested and ToolResultReady sent to the SOP and committed -> back), and the same
  without an SOP (unguarded); conversations saved (the default). In process:
  `asyncio.run(agent.invoke_async(prompt))`, unguarded, and guarded in process: the same guard
  hooks (`SOPGuard`) sending both tool events to the same SOP run in this process (`LocalSOP`),
  each event then committed to SQLite (its log row and the state, one transaction; WAL,
  synchronous=NORMAL). Bare actor: `ray.get(actor.ask.remote(prompt))` on a strands Agent
  built in the actor.
- throughput: `--conversations` concurrent calls (submit, then wait) on one AgentActor
  (`max_concurrency` 16: model calls at once), with and without saved conversations, vs the
  same number of concurrent calls to the bare actor; 5 rounds per side in turns (median).
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: `tests.support` imports

import sopy_actors
from sopy_actors import ScriptedModel, StrandsAgent
from sopy_actors.agents.guard import CONTEXT_KEY, CallContext, SOPGuard
from sopy_actors.agents.local import LocalOwner
from sopy_actors.agents.tools import events_of
from sopy_actors.core.events import Event
from sopy_actors.runtime.messages import Receipt
from sopy_actors.testing import LocalSOP
from tests.support import agentflow

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = [{"tool": "shout", "input": {"text": "{prompt}"}}, "Said {result}"]


class CommittingOwner:
    """The in-process guard's SOP: `LocalOwner` applies each event to a `LocalSOP` run here, then
    one SQLite transaction stores its log row and the state (WAL, synchronous=NORMAL).

    Args:
        path: the SQLite file.
    """

    def __init__(self, path: str) -> None:
        self.local = LocalOwner(LocalSOP(agentflow.publishing_sop()))
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE events (sop_id TEXT, version INTEGER, event_id TEXT UNIQUE, entry TEXT)")
        self.db.execute("CREATE TABLE sops (sop_id TEXT PRIMARY KEY, version INTEGER, state TEXT)")

    @property
    def sop_id(self) -> str:
        return self.local.sop_id

    async def send_async(self, event: Event[Any]) -> Receipt:
        receipt = await self.local.send_async(event)
        version, state = receipt.version, self.local.run.state.model_dump_json()
        self.db.execute("BEGIN")
        self.db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (self.sop_id, version, event.id, event.model_dump_json()))
        self.db.execute("INSERT OR REPLACE INTO sops VALUES (?, ?, ?)", (self.sop_id, version, state))
        self.db.execute("COMMIT")
        return receipt


async def ask_strands(prompt: str, owner: CommittingOwner | None = None) -> dict[str, Any]:
    """The baseline call: a fresh strands Agent with the same model, tool and script; guarded by
    `owner` (the framework's guard hooks, in this process) if one is given."""
    from strands import Agent
    from strands.tools.executors import SequentialToolExecutor

    guards = [SOPGuard("bench", {agentflow.shout.tool_name: events_of(agentflow.shout)})] if owner is not None else []
    agent = Agent(
        model=ScriptedModel(SCRIPT),
        tools=[agentflow.shout],
        hooks=guards,
        tool_executor=SequentialToolExecutor(),
        callback_handler=None,
    )
    state = {CONTEXT_KEY: CallContext(owner=owner, call_id=uuid.uuid4().hex)} if owner is not None else {}
    result = await agent.invoke_async(prompt, invocation_state=state)
    return {"text": str(result), "stop_reason": result.stop_reason}


@ray.remote(num_cpus=0)
class BareAgentActor:
    """The Ray baseline: the same strands call in a plain async Ray actor."""

    async def ask(self, prompt: str) -> dict[str, Any]:
        return await ask_strands(prompt)


def _interleaved(calls: dict[str, Callable[[int], Any]], count: int) -> dict[str, float]:
    """Median ms of each kind of call, made `count` times in turns after a turn that warms every
    side up (the order rotates each turn)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for i in range(count + 1):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            started = time.perf_counter()
            calls[name](i)
            if i:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def latency(calls: int) -> dict[str, Any]:
    bare = BareAgentActor.remote()
    agent = StrandsAgent(tools=[agentflow.shout], model=ScriptedModel(SCRIPT), name="bench-latency")
    handle = agentflow.publishing_sop().start()
    owner = CommittingOwner(str(Path(tempfile.mkdtemp()) / "guarded.db"))
    ms = _interleaved(
        {
            "in_process": lambda i: asyncio.run(ask_strands(f"p{i}")),
            "in_process_guarded": lambda i: asyncio.run(ask_strands(f"p{i}", owner)),
            "bare_actor": lambda i: ray.get(bare.ask.remote(f"p{i}")),
            "guarded": lambda i: agent(f"p{i}", sop=handle, conversation=f"g-{uuid.uuid4().hex}"),
            "unguarded": lambda i: agent(f"p{i}", conversation=f"u-{uuid.uuid4().hex}"),
        },
        calls,
    )
    return {
        **{f"call_ms_{name}": round(value, 2) for name, value in ms.items()},
        "guarded_over_in_process": round(ms["guarded"] / ms["in_process"], 2),
        "guarded_over_in_process_guarded": round(ms["guarded"] / ms["in_process_guarded"], 2),
        "unguarded_over_in_process": round(ms["unguarded"] / ms["in_process"], 2),
        "guarded_over_bare": round(ms["guarded"] / ms["bare_actor"], 2),
        "unguarded_over_bare": round(ms["unguarded"] / ms["bare_actor"], 2),
        "sop_events_per_guarded_call": 2,
    }


def _submit_all(agent: StrandsAgent, conversations: int) -> None:
    futures = [agent.submit(f"p{i}") for i in range(conversations)]
    for future in futures:
        future.result(timeout=600)


def throughput(conversations: int, rounds: int = 5) -> dict[str, Any]:
    """Conversations/s, `conversations` at once: median of `rounds` rounds per side, in turns."""
    bare = BareAgentActor.remote()
    persisted = StrandsAgent(tools=[agentflow.shout], model=ScriptedModel(SCRIPT), name="bench-tp", max_concurrency=16)
    in_memory = StrandsAgent(
        tools=[agentflow.shout], model=ScriptedModel(SCRIPT), name="bench-tp-mem", max_concurrency=16, persist_sessions=False
    )
    ms = _interleaved(
        {
            "bare_actor": lambda i: ray.get([bare.ask.remote(f"p{i}") for i in range(conversations)]),
            "agent_actor": lambda i: _submit_all(persisted, conversations),
            "agent_actor_no_sessions": lambda i: _submit_all(in_memory, conversations),
        },
        rounds,
    )
    rate = {name: conversations / (value / 1000) for name, value in ms.items()}
    return {
        "conversations": conversations,
        **{f"conversations_per_s_{name}": round(value, 1) for name, value in rate.items()},
        "throughput_over_bare": round(rate["agent_actor"] / rate["bare_actor"], 2),
        "throughput_no_sessions_over_bare": round(rate["agent_actor_no_sessions"] / rate["bare_actor"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--conversations", type=int, default=64)
    arguments = parser.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    sopy_actors.init(
        namespace=f"bench-agents-{uuid.uuid4().hex[:6]}",
        store_dir=tempfile.mkdtemp(),
        log_to_driver=False,
        runtime_env={"py_modules": [str(ROOT / "tests")], "excludes": ["__pycache__"]},
    )
    report: dict[str, Any] = {"benchmark": "agents", "cpus": os.cpu_count()}
    report.update(latency(arguments.calls))
    report.update(throughput(arguments.conversations))
    print(json.dumps(report))
    sopy_actors.shutdown()


if __name__ == "__main__":
    main()

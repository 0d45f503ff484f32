"""Agent call overhead against the same strands Agent in a bare Ray actor; prints one JSON line.

    python benchmarks/agents.py [--calls 40] [--conversations 64]

Every side runs the same offline script (one tool call, then an answer) on a fresh conversation
per call, measured in the same run; the baselines are the same strands Agent called directly
in this process, and in a bare Ray actor:
- latency: one call, driver -> answer. Framework: `StrandsAgent(...)(prompt, sop=handle)`
  (handle -> AgentActor -> strands -> guard: ToolUseRequested and ToolResultReady sent to the
  SOP and committed -> back), and the same without an SOP (unguarded); session files on
  (the default). In process: `asyncio.run(agent.invoke_async(prompt))`. Bare actor:
  `ray.get(actor.ask.remote(prompt))` on a strands Agent built in the actor.
- throughput: `--conversations` concurrent calls (submit, then wait) on one AgentActor
  (`max_concurrency` 16), with and without session files, vs the same number of concurrent
  calls to the bare actor.
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: `tests.support` imports

import sopy_actors
from sopy_actors import ScriptedModel, StrandsAgent
from tests.support import agentflow

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = [{"tool": "shout", "input": {"text": "{prompt}"}}, "Said {result}"]


async def ask_strands(prompt: str) -> dict[str, Any]:
    """The baseline call: a fresh strands Agent with the same model, tool and script."""
    from strands import Agent
    from strands.tools.executors import SequentialToolExecutor

    agent = Agent(
        model=ScriptedModel(SCRIPT),
        tools=[agentflow.shout],
        tool_executor=SequentialToolExecutor(),
        callback_handler=None,
    )
    result = await agent.invoke_async(prompt)
    return {"text": str(result), "stop_reason": result.stop_reason}


@ray.remote(num_cpus=0)
class BareAgentActor:
    """The Ray baseline: the same strands call in a plain async Ray actor."""

    async def ask(self, prompt: str) -> dict[str, Any]:
        return await ask_strands(prompt)


def _timed(call: Any, count: int) -> list[float]:
    times = []
    for i in range(count):
        started = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - started)
    return times


def latency(calls: int) -> dict[str, Any]:
    bare = BareAgentActor.remote()
    guarded = StrandsAgent(tools=[agentflow.shout], model=ScriptedModel(SCRIPT), name="bench-latency")
    handle = agentflow.publishing_sop().start()
    ray.get(bare.ask.remote("warm"))
    guarded("warm", sop=handle, conversation="warm")
    asyncio.run(ask_strands("warm"))
    in_process_times = _timed(lambda i: asyncio.run(ask_strands(f"p{i}")), calls)
    bare_times = _timed(lambda i: ray.get(bare.ask.remote(f"p{i}")), calls)
    guarded_times = _timed(lambda i: guarded(f"p{i}", sop=handle, conversation=f"g-{uuid.uuid4().hex}"), calls)
    unguarded_times = _timed(lambda i: guarded(f"p{i}", conversation=f"u-{uuid.uuid4().hex}"), calls)
    in_process_ms = statistics.median(in_process_times) * 1000
    bare_ms = statistics.median(bare_times) * 1000
    guarded_ms = statistics.median(guarded_times) * 1000
    unguarded_ms = statistics.median(unguarded_times) * 1000
    return {
        "call_ms_in_process": round(in_process_ms, 2),
        "call_ms_bare_actor": round(bare_ms, 2),
        "call_ms_guarded": round(guarded_ms, 2),
        "call_ms_unguarded": round(unguarded_ms, 2),
        "guarded_over_in_process": round(guarded_ms / in_process_ms, 2),
        "unguarded_over_in_process": round(unguarded_ms / in_process_ms, 2),
        "guarded_over_bare": round(guarded_ms / bare_ms, 2),
        "unguarded_over_bare": round(unguarded_ms / bare_ms, 2),
        "sop_events_per_guarded_call": 2,
    }


def _submit_all(agent: StrandsAgent, conversations: int) -> float:
    started = time.perf_counter()
    futures = [agent.submit(f"p{i}") for i in range(conversations)]
    for future in futures:
        future.result(timeout=600)
    return time.perf_counter() - started


def throughput(conversations: int) -> dict[str, Any]:
    bare = BareAgentActor.remote()
    persisted = StrandsAgent(tools=[agentflow.shout], model=ScriptedModel(SCRIPT), name="bench-tp", max_concurrency=16)
    in_memory = StrandsAgent(
        tools=[agentflow.shout], model=ScriptedModel(SCRIPT), name="bench-tp-mem", max_concurrency=16, persist_sessions=False
    )
    ray.get(bare.ask.remote("warm"))
    persisted("warm")
    in_memory("warm")
    started = time.perf_counter()
    ray.get([bare.ask.remote(f"p{i}") for i in range(conversations)])
    bare_seconds = time.perf_counter() - started
    persisted_seconds = _submit_all(persisted, conversations)
    in_memory_seconds = _submit_all(in_memory, conversations)
    return {
        "conversations": conversations,
        "conversations_per_s_bare_actor": round(conversations / bare_seconds, 1),
        "conversations_per_s_agent_actor": round(conversations / persisted_seconds, 1),
        "conversations_per_s_agent_actor_no_sessions": round(conversations / in_memory_seconds, 1),
        "throughput_over_bare": round(bare_seconds / persisted_seconds, 2),
        "throughput_no_sessions_over_bare": round(bare_seconds / in_memory_seconds, 2),
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

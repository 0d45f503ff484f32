"""The spec's ParallelAgentCoordinator: three agents working at once, in two forms.

- **Polling** (the spec's form): `ParallelAgentCoordinator` submits one task to each agent and
  keeps the `AgentFuture`s in state (`pending_tasks`); `WaitForParallelCompletion` handles each
  `CheckCompletion` by asking the futures `done()`, and moves to `AggregateResults` once none
  is pending; the next `CheckCompletion` aggregates and ends.
- **Event-driven** (no polling): `ParallelAgentCoordinator(wait_for="events")` submits with
  `deliver_to=current_sop()`, so each agent's completion arrives at the SOP as an
  `AgentCompleted` event; `CollectCompletions` records each one as it comes and aggregates when
  the last is in.

Each agent is a `StrandsAgent` in its own Ray actor, so the three calls run at the same time.
Its tool does a small piece of real work on the task's text, takes about `WORK_SECONDS` (it
stands for a slow query) and reports when it started and finished, so the run can show that
the calls overlapped. Offline the agents play a script (call the tool, answer with its result);
with `SOPY_MODEL` set they use that model instead.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, Field

from sopy_actors import End, Event, Procedure, cond, current_sop, handler, make_prompt, tool
from sopy_actors.agents import (
    AgentCompleted,
    AgentFuture,
    AgentResult,
    ScriptedModel,
    StrandsAgent,
)
from sopy_actors.errors import AgentError

WORK_SECONDS = 1.0


def _timed(started: float, work: dict[str, Any]) -> dict[str, Any]:
    time.sleep(max(0.0, WORK_SECONDS - (time.time() - started)))  # the slow part of the job
    return {**work, "started": started, "finished": time.time(), "pid": os.getpid()}


def _subject(text: str) -> str:
    """What a task works on: the text after its last colon ("Outline this: ...")."""
    return text.rsplit(":", 1)[-1].strip()


# -- the agents' tools ------------------------------------------------------------------------


@tool
def summarize_numbers(text: str) -> dict[str, Any]:
    """Find the numbers in a text and summarise them (count, total, mean, smallest, largest).

    Args:
        text: the text holding the numbers.
    """
    started = time.time()
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]
    total = sum(numbers)
    return _timed(started, {
        "count": len(numbers), "total": total, "mean": round(total / len(numbers), 2) if numbers else None,
        "min": min(numbers, default=None), "max": max(numbers, default=None),
    })


@tool
def word_statistics(text: str) -> dict[str, Any]:
    """Count the words of a text: how many, how many distinct, the longest, the most frequent.

    Args:
        text: the task; the text to analyse follows its last colon.
    """
    started = time.time()
    words = re.findall(r"[a-z']+", _subject(text).lower())
    return _timed(started, {
        "words": len(words), "distinct": len(set(words)), "longest": max(words, key=len, default=""),
        "most_frequent": Counter(words).most_common(2),
    })


@tool
def outline(text: str) -> dict[str, Any]:
    """Turn a text into an outline: one bullet per sentence.

    Args:
        text: the task; the text to outline follows its last colon.
    """
    started = time.time()
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", _subject(text)) if s.strip()]
    return _timed(started, {"bullets": [f"- {sentence}" for sentence in sentences]})


def _agent(name: str, work: Any, prompt: str) -> StrandsAgent:
    script = [{"tool": work.tool_name, "input": {"text": "{prompt}"}}, "{result}"]
    return StrandsAgent(
        tools=[work],
        system_prompt=f"{prompt} Use the {work.tool_name} tool on the task's text and answer with its result.",
        model=None if os.environ.get("SOPY_MODEL") else ScriptedModel(script),
        name=name,
    )


def agents() -> dict[str, StrandsAgent]:
    """The three agents, by id (offline scripts unless SOPY_MODEL is set)."""
    return {
        "agent_1": _agent("numbers", summarize_numbers, "You summarise numeric data."),
        "agent_2": _agent("words", word_statistics, "You analyse wording."),
        "agent_3": _agent("outliner", outline, "You outline texts."),
    }


# -- state and events -------------------------------------------------------------------------


class ParallelTask(BaseModel):
    id: str
    category: str
    description: str


class TaskBatch(BaseModel):
    tasks: list[ParallelTask]


class TaskOutcome(BaseModel):
    """How one task ended: the agent's result, or the error it raised."""

    agent: str
    result: AgentResult | None = None
    error: str | None = None


class ParallelState(BaseModel):
    # task id -> (agent id, future): futures are plain data, so they live in state
    pending_tasks: dict[str, tuple[str, AgentFuture]] = Field(default_factory=dict)
    completed_tasks: dict[str, TaskOutcome] = Field(default_factory=dict)
    checks: int = 0
    aggregate: dict[str, Any] | None = None


class ParallelTaskStart(Event[TaskBatch]):
    """Start these tasks, each on the agent for its category."""


class CheckCompletion(Event[int]):
    """Time to check which tasks have finished (the payload counts the checks)."""


def tool_output(result: AgentResult) -> dict[str, Any]:
    """The JSON result of the agent's first successful tool call ({} if none)."""
    for call in result.tool_calls:
        if call.status == "ok":
            value = json.loads(call.message)
            return value if isinstance(value, dict) else {"value": value}
    return {}


def aggregate(state: ParallelState) -> dict[str, Any]:
    """Combine the completed tasks: each one's answer, and how the agents' work overlapped."""
    outputs = {task_id: tool_output(o.result) for task_id, o in state.completed_tasks.items() if o.result}
    starts = [out["started"] for out in outputs.values() if "started" in out]
    ends = [out["finished"] for out in outputs.values() if "finished" in out]
    return {
        "tasks": len(state.completed_tasks),
        "failed": sorted(task_id for task_id, o in state.completed_tasks.items() if o.error),
        "answers": {task_id: o.result.text if o.result else o.error for task_id, o in sorted(state.completed_tasks.items())},
        "agents": {task_id: o.agent for task_id, o in sorted(state.completed_tasks.items())},
        "work_seconds": round(sum(e - s for s, e in zip(starts, ends, strict=True)), 3),
        "span_seconds": round(max(ends) - min(starts), 3) if starts else 0.0,
        "all_ran_at_once": bool(starts) and max(starts) < min(ends),
    }


# -- the coordinator, and the polling form (the spec's) ---------------------------------------


class ParallelAgentCoordinator(Procedure[ParallelState]):
    """Starts each task on its agent; `wait_for` says how the SOP learns that they finished.

    Args:
        wait_for: "polling": the futures are asked (`CheckCompletion`); "events": each
            completion is delivered to this SOP as `AgentCompleted`.
    """

    prompt = make_prompt("Start every task on the agent for its category.")

    def __init__(self, *, wait_for: Literal["polling", "events"] = "polling") -> None:
        super().__init__()
        self.agents = agents()
        self.wait_for = wait_for

    @handler
    def handle_parallel_task_start(self, state: ParallelState, event: ParallelTaskStart) -> Procedure[ParallelState]:
        tasks = event.payload.tasks
        # current_sop(): the SOP running this handler, which then receives AgentCompleted events
        deliver_to = current_sop() if self.wait_for == "events" else None

        # Submit tasks to different agents in parallel: submit() returns a future at once
        futures = {}
        for task in tasks:
            agent_id = self._select_agent_for_task(task)
            future = self.agents[agent_id].submit(f"Execute task: {task.description}", deliver_to=deliver_to)
            futures[task.id] = (agent_id, future)

        state.pending_tasks = futures
        if cond(self.wait_for == "events", "completions arrive as events"):
            return CollectCompletions()
        return WaitForParallelCompletion()

    def _select_agent_for_task(self, task: ParallelTask) -> str:
        """Select the best agent for a given task"""
        if task.category == "data":
            return "agent_1"
        elif task.category == "analysis":
            return "agent_2"
        else:
            return "agent_3"


class WaitForParallelCompletion(Procedure[ParallelState]):
    prompt = make_prompt("Wait until every task has finished.")

    @handler
    def handle_check_completion(self, state: ParallelState, event: CheckCompletion) -> Procedure[ParallelState]:
        completed_tasks = {}
        remaining_tasks = {}

        # Check which tasks have completed
        for task_id, (agent_id, future) in state.pending_tasks.items():
            if future.done():
                try:
                    result = future.result()
                    completed_tasks[task_id] = TaskOutcome(agent=agent_id, result=result)
                except AgentError as e:
                    completed_tasks[task_id] = TaskOutcome(agent=agent_id, error=str(e))
            else:
                remaining_tasks[task_id] = (agent_id, future)

        # Update state
        state.checks = event.payload
        state.completed_tasks.update(completed_tasks)
        state.pending_tasks = remaining_tasks

        # Check if all tasks completed
        if cond(not remaining_tasks, "every task has finished"):
            return AggregateResults()

        return self  # Continue waiting


class AggregateResults(Procedure[ParallelState]):
    prompt = make_prompt("Every task has finished: aggregate their results.")

    @handler
    def handle_check_completion(self, state: ParallelState, event: CheckCompletion) -> Procedure[ParallelState]:
        state.checks = event.payload
        state.aggregate = aggregate(state)
        return End(prompt=make_prompt("Report the aggregated results."))


# -- the event-driven form (no polling) -------------------------------------------------------


class CollectCompletions(Procedure[ParallelState]):
    prompt = make_prompt("Record each task's result as its agent finishes; aggregate when all are in.")

    @handler
    def handle_agent_completed(self, state: ParallelState, event: AgentCompleted) -> Procedure[ParallelState] | str:
        done = event.payload
        task_id = next((t for t, (_, future) in state.pending_tasks.items() if future.call_id == done.call_id), None)
        if task_id is None:
            return f"Call {done.call_id} is not one of this SOP's pending tasks."
        agent_id, _ = state.pending_tasks.pop(task_id)
        state.completed_tasks[task_id] = TaskOutcome(agent=agent_id, result=done.result, error=done.error)
        if cond(state.pending_tasks, "tasks are still running"):
            return self  # more to come
        state.aggregate = aggregate(state)
        return End(prompt=make_prompt("Report the aggregated results."))

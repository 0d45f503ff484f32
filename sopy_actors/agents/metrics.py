"""Per-agent call counters: the AgentActor's cumulative snapshot and its frozen view.

`AgentActor.metrics()` (on the agent's actor, on its event loop) returns a plain dict that
`StrandsAgent.statistics()` validates as `AgentStatistics`. Counters are cumulative since the
actor process started, so a restart resets them; `pid` and `started_at` tell a reset apart:

```
{
  "agent": "researcher",          # the agent's name
  "pid": 12345, "started_at": 1700000000.0,
  "calls": 12,                    # finished calls (ok + errors)
  "errors": 1,                    # calls that raised (model, tool loop, cancelled)
  "in_flight": 2,                 # calls running now
  "reruns": 1,                    # calls this process ran again (an earlier process died in them)
  "input_tokens": 5230, "output_tokens": 812, "total_tokens": 6042,
  "tool_calls": 30, "rejected_tool_calls": 4,
  "interrupted_tool_calls": 1,    # tool calls a dying process left without a result
  "latency_seconds_sum": 8.2, "latency_seconds_max": 1.9,
  "latency_seconds_buckets": {"0.05": 1, "0.1": 3, ..., "+Inf": 12}   # cumulative (le)
}
```
The Monitor does not read this snapshot: the AgentActor reports each call to it through its
`MetricsReporter`, and `/metrics` totals survive agent restarts: `sopy_agent_calls_total`
(`agent`, `outcome` = ok or error), `sopy_agent_call_reruns_total` (`agent`),
`sopy_agent_call_duration_seconds` (histogram over the same buckets as
`latency_seconds_buckets`), `sopy_agent_tokens_total` (`agent`, `direction` = input or output),
`sopy_tool_calls_total` and `sopy_tool_calls_rejected_total` (`agent`, `tool`). `in_flight` and
`interrupted_tool_calls` have no counterpart there.
"""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from sopy_actors.telemetry.names import AGENT_CALL_DURATION

__all__ = ["AgentMetrics", "AgentStatistics"]

_BUCKETS = AGENT_CALL_DURATION.buckets


class AgentStatistics(BaseModel):
    """A snapshot of one agent actor's counters (see the module docstring for each field)."""

    model_config = ConfigDict(frozen=True)

    agent: str
    pid: int
    started_at: float
    calls: int
    errors: int
    in_flight: int
    reruns: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    tool_calls: int
    rejected_tool_calls: int
    interrupted_tool_calls: int
    latency_seconds_sum: float
    latency_seconds_max: float
    latency_seconds_buckets: dict[str, int]

    @property
    def mean_latency_seconds(self) -> float:
        """Average call latency (0 before the first call)."""
        return self.latency_seconds_sum / self.calls if self.calls else 0.0


class AgentMetrics:
    """Cumulative counters of one agent actor; mutated on its event loop only."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.started_at = time.time()
        self.calls = self.errors = self.in_flight = self.reruns = 0
        self.input_tokens = self.output_tokens = 0
        self.tool_calls = self.rejected_tool_calls = self.interrupted_tool_calls = 0
        self.latency_sum = self.latency_max = 0.0
        self.buckets = [0] * (len(_BUCKETS) + 1)

    def record(
        self,
        *,
        latency: float,
        input_tokens: int,
        output_tokens: int,
        tool_calls: int,
        rejected_tool_calls: int,
        interrupted_tool_calls: int,
        error: bool,
    ) -> None:
        """Count one finished call."""
        self.calls += 1
        self.errors += int(error)
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.tool_calls += tool_calls
        self.rejected_tool_calls += rejected_tool_calls
        self.interrupted_tool_calls += interrupted_tool_calls
        self.latency_sum += latency
        self.latency_max = max(self.latency_max, latency)
        index = next((i for i, bound in enumerate(_BUCKETS) if latency <= bound), len(_BUCKETS))
        self.buckets[index] += 1

    def snapshot(self) -> dict[str, Any]:
        """The plain-dict snapshot described in the module docstring."""
        cumulative, running = {}, 0
        for bound, count in zip((*map(str, _BUCKETS), "+Inf"), self.buckets, strict=True):
            running += count
            cumulative[bound] = running
        return {
            "agent": self.agent,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "calls": self.calls,
            "errors": self.errors,
            "in_flight": self.in_flight,
            "reruns": self.reruns,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "tool_calls": self.tool_calls,
            "rejected_tool_calls": self.rejected_tool_calls,
            "interrupted_tool_calls": self.interrupted_tool_calls,
            "latency_seconds_sum": self.latency_sum,
            "latency_seconds_max": self.latency_max,
            "latency_seconds_buckets": cumulative,
        }

"""Per-agent call metrics: the AgentActor's cumulative snapshot and its frozen view.

`AgentActor.metrics()` returns a plain dict (the Monitor reads it; counters are cumulative since
the actor process started, so a restart resets them, as Prometheus counters do; `pid` and
`started_at` tell a reset apart):

```
{
  "agent": "researcher",          # the only label: the agent's name (bounded)
  "pid": 12345, "started_at": 1700000000.0,
  "calls": 12,                    # finished calls (ok + errors)
  "errors": 1,                    # calls that raised (model, tool loop, cancelled)
  "in_flight": 2,                 # calls running now
  "input_tokens": 5230, "output_tokens": 812, "total_tokens": 6042,
  "tool_calls": 30, "rejected_tool_calls": 4,
  "latency_seconds_sum": 8.2, "latency_seconds_max": 1.9,
  "latency_seconds_buckets": {"0.05": 1, "0.1": 3, ..., "+Inf": 12}   # cumulative (le)
}
```
Metric names for an exporter: `sopy_agent_calls_total`, `sopy_agent_errors_total`,
`sopy_agent_tokens_total{kind=input|output}`, `sopy_agent_tool_calls_total`,
`sopy_agent_rejected_tool_calls_total`, `sopy_agent_call_duration_seconds` (histogram).
"""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["LATENCY_BUCKETS", "AgentMetrics", "AgentStatistics"]

LATENCY_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class AgentStatistics(BaseModel):
    """A snapshot of one agent actor's counters (see the module docstring for each field)."""

    model_config = ConfigDict(frozen=True)

    agent: str
    pid: int
    started_at: float
    calls: int
    errors: int
    in_flight: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    tool_calls: int
    rejected_tool_calls: int
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
        self.calls = self.errors = self.in_flight = 0
        self.input_tokens = self.output_tokens = 0
        self.tool_calls = self.rejected_tool_calls = 0
        self.latency_sum = self.latency_max = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)

    def record(
        self,
        *,
        latency: float,
        input_tokens: int,
        output_tokens: int,
        tool_calls: int,
        rejected_tool_calls: int,
        error: bool,
    ) -> None:
        """Count one finished call."""
        self.calls += 1
        self.errors += int(error)
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.tool_calls += tool_calls
        self.rejected_tool_calls += rejected_tool_calls
        self.latency_sum += latency
        self.latency_max = max(self.latency_max, latency)
        index = next((i for i, bound in enumerate(LATENCY_BUCKETS) if latency <= bound), len(LATENCY_BUCKETS))
        self.buckets[index] += 1

    def snapshot(self) -> dict[str, Any]:
        """The plain-dict snapshot described in the module docstring."""
        cumulative, running = {}, 0
        for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), self.buckets, strict=True):
            running += count
            cumulative[bound] = running
        return {
            "agent": self.agent,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "calls": self.calls,
            "errors": self.errors,
            "in_flight": self.in_flight,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "tool_calls": self.tool_calls,
            "rejected_tool_calls": self.rejected_tool_calls,
            "latency_seconds_sum": self.latency_sum,
            "latency_seconds_max": self.latency_max,
            "latency_seconds_buckets": cumulative,
        }

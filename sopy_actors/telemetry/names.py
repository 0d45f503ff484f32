"""Every metric family sopy_actors exports: name, type, labels, meaning — the one list.

Pure data (no Ray, no prometheus_client). Actors refer to these constants when they report;
the Monitor exports exactly these families; the README table is checked against them and
against a live scrape. Names follow `sopy_<noun>_<unit>`, counters end in `_total`, units are
base units; labels are class names and outcomes, never SOP ids or user values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ACTOR_RESTARTS",
    "AGENT_CALLS",
    "AGENT_CALL_DURATION",
    "AGENT_CALL_RERUNS",
    "AGENT_TOKENS",
    "CIRCUIT_STATE",
    "DEPENDENCY_LATENCY",
    "DEPENDENCY_UP",
    "EVENTS",
    "EVENT_ERROR_RATIO",
    "EVENT_REJECTION_RATIO",
    "FAMILIES",
    "HANDLER_BYTES",
    "HANDLER_DURATION",
    "HEALTH_CHECKS",
    "HEALTH_RISK",
    "LAZY_SECTION_BYTES",
    "METRIC_UPDATES_DROPPED",
    "MONITOR_REPORTS",
    "NODE_CPU",
    "NODE_MEMORY",
    "QUEUED_EVENTS",
    "RECOVERY_STEPS",
    "SOPS_FINISHED",
    "SOPS_STARTED",
    "SOP_INSTANCES",
    "STORE_COMMIT_DURATION",
    "TOOL_CALLS",
    "TOOL_CALLS_REJECTED",
    "TRANSITIONS",
    "Family",
    "family",
]

Kind = Literal["counter", "gauge", "histogram"]

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family as exposed on `/metrics`.

    Attributes:
        name: the exposed name (counters include `_total`).
        kind: counter, gauge or histogram.
        labels: label names, in the order reporters give their values.
        help: what one sample means.
        buckets: histogram upper bounds in seconds (`+Inf` is implicit).
    """

    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str
    buckets: tuple[float, ...] = ()


EVENTS = Family(
    "sopy_events_total", "counter", ("sop", "procedure", "event", "outcome"),
    "Events handled by SOPs; outcome is transitioned, stayed, rejected, ended, ignored or failed "
    "(the handler raised).",
)
TRANSITIONS = Family(
    "sopy_transitions_total", "counter", ("sop", "from", "to"),
    "Procedure changes committed (to=End when an SOP ends).",
)
HANDLER_DURATION = Family(
    "sopy_handler_duration_seconds", "histogram", ("procedure", "event"),
    "Time a procedure actor spent running one handler.", _FAST,
)
SOPS_STARTED = Family("sopy_sops_started_total", "counter", ("sop",), "SOP instances started.")
SOPS_FINISHED = Family(
    "sopy_sops_finished_total", "counter", ("sop", "phase"),
    "SOP instances finished; phase is done, failed or cancelled.",
)
SOP_INSTANCES = Family(
    "sopy_sop_instances", "gauge", ("sop", "phase"),
    "SOP instances loaded on hosts now; phase is running (handling an event), waiting, done, "
    "failed or cancelled.",
)
QUEUED_EVENTS = Family(
    "sopy_queued_events", "gauge", ("sop",), "Events queued on hosts, not yet handled."
)
RECOVERY_STEPS = Family(
    "sopy_recovery_steps_total", "counter", ("strategy", "outcome"),
    "Recovery steps taken (retry, fallback, alternative, manual) and how they ended.",
)
AGENT_CALLS = Family(
    "sopy_agent_calls_total", "counter", ("agent", "outcome"), "Calls to specialist agents (ok or error)."
)
AGENT_CALL_RERUNS = Family(
    "sopy_agent_call_reruns_total", "counter", ("agent",),
    "Times an agent call was run again because the agent's process died during it.",
)
AGENT_CALL_DURATION = Family(
    "sopy_agent_call_duration_seconds", "histogram", ("agent",), "Latency of one agent call.", _SLOW
)
AGENT_TOKENS = Family(
    "sopy_agent_tokens_total", "counter", ("agent", "direction"),
    "Model tokens used by agents; direction is input or output.",
)
TOOL_CALLS = Family("sopy_tool_calls_total", "counter", ("agent", "tool"), "Tool calls agents requested.")
TOOL_CALLS_REJECTED = Family(
    "sopy_tool_calls_rejected_total", "counter", ("agent", "tool"),
    "Tool calls an SOP vetoed (the agent got a recovery prompt).",
)
HANDLER_BYTES = Family(
    "sopy_handler_call_bytes_total", "counter", ("direction",),
    "JSON bytes of handler calls between hosts and procedure actors: sent (procedure, state, event) "
    "or received (the new state and outcome).",
)
LAZY_SECTION_BYTES = Family(
    "sopy_lazy_section_bytes_total", "counter", ("operation",),
    "Bytes of lazy state sections (compressed) that procedure actors loaded from the Store or stored in it.",
)
ACTOR_RESTARTS = Family(
    "sopy_actor_restarts_total", "counter", ("kind",),
    "sopy actors that came back after their process died (kind: host, procedure, store, agent, monitor).",
)
STORE_COMMIT_DURATION = Family(
    "sopy_store_commit_duration_seconds", "histogram", (), "Time to write one group commit to the Store.", _FAST
)
NODE_MEMORY = Family(
    "sopy_node_memory_ratio", "gauge", ("node",), "Memory in use on a Ray node, 0-1 (node: short node id)."
)
NODE_CPU = Family("sopy_node_cpu_ratio", "gauge", ("node",), "CPU busy on a Ray node, 0-1.")
EVENT_ERROR_RATIO = Family(
    "sopy_event_error_ratio", "gauge", (), "Share of events whose handler failed over the last 60 s."
)
EVENT_REJECTION_RATIO = Family(
    "sopy_event_rejection_ratio", "gauge", (), "Share of events rejected over the last 60 s."
)
DEPENDENCY_UP = Family(
    "sopy_dependency_up", "gauge", ("probe",), "1 if the registered dependency probe last succeeded, else 0."
)
DEPENDENCY_LATENCY = Family(
    "sopy_dependency_latency_seconds", "gauge", ("probe",), "Duration of the last dependency probe."
)
HEALTH_RISK = Family(
    "sopy_health_risk_level", "gauge", ("predictor",),
    "Cluster-wide risk from the built-in predictors: 0 low, 1 medium, 2 high.",
)
CIRCUIT_STATE = Family(
    "sopy_circuit_state", "gauge", ("target",),
    "Circuit breaker of an agent or tool (target: agent:<name> or tool:<name>): 0 closed, 1 half-open, 2 open.",
)
HEALTH_CHECKS = Family(
    "sopy_health_checks_total", "counter", ("sop", "outcome"),
    "HealthCheck events delivered to monitored SOPs (outcome: the event's outcome, or undelivered).",
)
MONITOR_REPORTS = Family(
    "sopy_monitor_reports_total", "counter", ("kind",), "Metric batches the Monitor applied, by reporting actor kind."
)
METRIC_UPDATES_DROPPED = Family(
    "sopy_metric_updates_dropped_total", "counter", ("kind",),
    "Counter and histogram updates a reporting actor dropped: their series was new and it already "
    "held its limit of series (the Monitor was unreachable for long, or labels have too many values).",
)

FAMILIES: tuple[Family, ...] = (
    EVENTS, TRANSITIONS, HANDLER_DURATION, SOPS_STARTED, SOPS_FINISHED, SOP_INSTANCES, QUEUED_EVENTS,
    RECOVERY_STEPS, AGENT_CALLS, AGENT_CALL_RERUNS, AGENT_CALL_DURATION, AGENT_TOKENS, TOOL_CALLS,
    TOOL_CALLS_REJECTED, HANDLER_BYTES, LAZY_SECTION_BYTES, ACTOR_RESTARTS, STORE_COMMIT_DURATION, NODE_MEMORY,
    NODE_CPU, EVENT_ERROR_RATIO,
    EVENT_REJECTION_RATIO, DEPENDENCY_UP, DEPENDENCY_LATENCY, HEALTH_RISK, CIRCUIT_STATE, HEALTH_CHECKS,
    MONITOR_REPORTS, METRIC_UPDATES_DROPPED,
)

_BY_NAME = {f.name: f for f in FAMILIES}


def family(name: str) -> Family | None:
    """The family exposed under `name`, or None."""
    return _BY_NAME.get(name)

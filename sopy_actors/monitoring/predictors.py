"""Failure predictors: plain functions from health metrics to a risk level.

Each takes the metrics mapping a `HealthCheck` carries (or a procedure's accumulated
`health_metrics`) and, optionally, the SOP's state, and returns "low", "medium" or "high" —
the signature SOPy's PredictiveRecovery calls: `predictor(self.health_metrics, state)`.
Thresholds are keyword arguments; `functools.partial` or `combine` tailor and compose them.
Pure Python; runs wherever the handler runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from typing import Any, Literal

__all__ = [
    "RISK_LEVELS",
    "Predictor",
    "Risk",
    "combine",
    "dependency_failure",
    "error_rate_increase",
    "highest",
    "performance_degradation",
    "resource_exhaustion",
]

Risk = Literal["low", "medium", "high"]
RISK_LEVELS: tuple[Risk, ...] = ("low", "medium", "high")
Predictor = Callable[..., Risk]


def highest(*risks: Risk) -> Risk:
    """The most severe of `risks` ("low" if none)."""
    return max(risks, key=RISK_LEVELS.index, default="low")


def _level(value: float, *, medium: float, high: float) -> Risk:
    if value > high:
        return "high"
    if value > medium:
        return "medium"
    return "low"


def resource_exhaustion(
    metrics: Mapping[str, Any],
    state: Any = None,
    *,
    medium: float = 0.8,
    high: float = 0.9,
    keys: tuple[str, ...] = ("memory_usage",),
) -> Risk:
    """Resources running out: the highest of `keys` (default memory; add "cpu_usage") against thresholds."""
    usage = max((float(metrics.get(key, 0) or 0) for key in keys), default=0.0)
    return _level(usage, medium=medium, high=high)


def performance_degradation(
    metrics: Mapping[str, Any],
    state: Any = None,
    *,
    threshold: float | None = None,
    window: int = 10,
    medium: float = 1.5,
    high: float = 2.0,
) -> Risk:
    """Responses slowing down, against a threshold and against the recent baseline.

    The mean of the last `window` `response_times` is compared with `threshold` seconds (default:
    `state.performance_threshold` when the state has one) and with the median of the samples
    before them (when there are at least `window` of those). Above `medium` times either is
    medium, above `high` times is high; the worse of the two comparisons wins.
    """
    times = [float(t) for t in metrics.get("response_times", []) or []]
    recent = times[-window:]
    if not recent:
        return "low"
    average = sum(recent) / len(recent)
    if threshold is None:
        threshold = getattr(state, "performance_threshold", None)
    risks: list[Risk] = []
    if threshold:
        risks.append(_level(average / threshold, medium=medium, high=high))
    earlier = times[:-window]
    if len(earlier) >= window:
        baseline = statistics.median(earlier)
        if baseline > 0:
            risks.append(_level(average / baseline, medium=medium, high=high))
    return highest(*risks)


def error_rate_increase(
    metrics: Mapping[str, Any],
    state: Any = None,
    *,
    medium: float = 0.05,
    high: float = 0.2,
    increase: float = 0.05,
) -> Risk:
    """Handler failures rising: `error_rate` against thresholds and against its 10-minute baseline.

    Above `high` is high; above `medium`, or more than `increase` above `error_rate_baseline`,
    is medium; both at once (above `medium` and rising) is high.
    """
    rate = float(metrics.get("error_rate", 0) or 0)
    rising = rate - float(metrics.get("error_rate_baseline", 0) or 0) > increase
    if rate > high or (rising and rate > medium):
        return "high"
    if rate > medium or rising:
        return "medium"
    return "low"


def dependency_failure(
    metrics: Mapping[str, Any], state: Any = None, *, critical: tuple[str, ...] = ()
) -> Risk:
    """External dependencies down: a critical one (or at least half of them) is high, any is medium."""
    dependencies: Mapping[str, Any] = metrics.get("dependencies", {}) or {}
    down = [name for name, status in dependencies.items() if not _up(status)]
    if not down:
        return "low"
    if any(name in critical for name in down) or 2 * len(down) >= len(dependencies):
        return "high"
    return "medium"


def _up(status: Any) -> bool:
    return bool(status.get("up") if isinstance(status, Mapping) else getattr(status, "up", False))


def combine(*predictors: Predictor) -> Predictor:
    """One predictor that returns the highest risk any of `predictors` returns."""

    def combined(metrics: Mapping[str, Any], state: Any = None) -> Risk:
        return highest(*(predictor(metrics, state) for predictor in predictors))

    combined.__name__ = "combine(" + ", ".join(getattr(p, "__name__", repr(p)) for p in predictors) + ")"
    return combined

"""Telemetry: metric names and the per-actor reporter; below the runtime, imported by every actor.

`names` and `deltas` (what a reporter holds between batches) are plain Python. `MetricsReporter`
imports Ray; the Monitor that receives its batches lives above the runtime, in
`sopy_actors.monitoring`.
"""

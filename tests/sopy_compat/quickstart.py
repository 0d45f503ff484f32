"""SOPy's README quick start: one procedure that ends when the task reports success.

Written from SOPy's README (described, not copied). The README's state is a plain class;
`TaskRecord` is the same state as a dataclass, which can also cross processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sopy_actors.sopy import End, Event, Procedure, handler, make_prompt


class TaskState:
    """A plain object as state (the README's): works in process only."""

    def __init__(self) -> None:
        self.completed = False


@dataclass
class TaskRecord:
    completed: bool = False


class TaskCompleted(Event[bool]):
    pass


class StartTask(Procedure[TaskState | TaskRecord]):
    prompt = make_prompt("Begin the task and work towards completion")

    @handler
    def handle_task_completed(self, state: TaskState | TaskRecord, event: TaskCompleted):
        if event.payload:
            state.completed = True
            return End()
        return "Task failed, please try again"

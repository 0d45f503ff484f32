"""What a process remembers of its cluster (agent actors, kept replies, host handles) is
forgotten when its engine is uninstalled (`shutdown()`): none of it is good in the next session."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = """
    from sopy_actors.agents import future
    from sopy_actors.runtime import sending
    from sopy_actors.runtime.engine import uninstall

    future.keep_reply("call-1", object())
    future._actors[("ns", "agent")] = object()
    sending._hosts[("ns", "host")] = object()
    uninstall()
    print(future._replies == {}, future._actors == {}, sending._hosts == {})
"""


def test_uninstalling_the_engine_forgets_agent_actors_replies_and_hosts() -> None:
    # A process of its own: uninstalling in this one would take the engine from other tests.
    command = [sys.executable, "-c", textwrap.dedent(SCRIPT)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True", "True"]

"""Specialist agents on the actor runtime: guarded tools, concurrency, futures, restarts."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
import ray

from sopy_actors import SOP, ScriptedModel, StrandsAgent
from sopy_actors.agents import AgentFuture
from sopy_actors.core.codec import decode_value, encode_value
from sopy_actors.errors import AgentError
from tests.support import agentflow as a
from tests.support.monitoring import scrape, value, wait_for

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
pytestmark = pytest.mark.usefixtures("runtime")

DRAFT = {"path": "{prompt}/draft.txt", "text": "hello"}
# Off-procedure first (publish before any draft), then the procedure's order.
GUARDED_SCRIPT = [
    {"tool": "publish", "input": {"path": "{prompt}/draft.txt"}},
    "Refused: {result}",
    {"tool": "write_draft", "input": DRAFT},
    {"tool": "publish", "input": {"path": "{prompt}/draft.txt"}},
    "Published: {result}",
]
ONCE_OFF_SCRIPT = GUARDED_SCRIPT[:1] + GUARDED_SCRIPT[2:4] + ["Done: {result}"]
# Two off-procedure calls (publish first, then a second draft), in one call.
TWICE_OFF_SCRIPT = [
    {"tool": "publish", "input": {"path": "{prompt}/draft.txt"}},
    {"tool": "write_draft", "input": DRAFT},
    {"tool": "write_draft", "input": DRAFT},
    {"tool": "publish", "input": {"path": "{prompt}/draft.txt"}},
    "Done: {result}",
]


def _agent(steps: list[Any], name: str, **options: Any) -> StrandsAgent:
    return StrandsAgent(tools=[a.write_draft, a.publish], model=ScriptedModel(steps), name=name, **options)


def _calls(directory: Path) -> list[str]:
    log = directory / "calls.log"
    return log.read_text().split() if log.exists() else []


def _history(handle: Any) -> list[tuple[str, str]]:
    return [(e.event_type, e.outcome) for e in handle.history()]


def _actor(agent: StrandsAgent, runtime: Any) -> Any:
    return ray.get_actor(agent.actor_name(), namespace=runtime.namespace)


def test_a_rejected_tool_call_never_runs_leaves_the_sop_unchanged_and_the_next_call_is_accepted(
    tmp_path: Path,
) -> None:
    agent = _agent(GUARDED_SCRIPT, "guarded-writer")
    handle = a.publishing_sop().start()
    state_before = handle.state()

    refused = agent(str(tmp_path), sop=handle)

    recovery = f"Cannot publish {tmp_path}/draft.txt: write the draft first with write_draft."
    # SOPy's refusal text: the procedure, the recovery prompt and the procedure's instruction
    prompt = f"An error occured in Procedure Drafting: {recovery}. Prompt for this procedure is Write the draft with write_draft."
    assert refused.text == f"Refused: {prompt}"  # the model saw the recovery prompt as the tool result
    assert [(c.name, c.status, c.message) for c in refused.tool_calls] == [("publish", "rejected", prompt)]
    assert refused.rejected_tool_calls == refused.tool_calls
    assert _calls(tmp_path) == [] and not (tmp_path / "draft.txt.published").exists()
    assert handle.state() == state_before
    assert _history(handle) == [("PublishRequested", "rejected")]
    assert handle.status().procedure == "Drafting"
    messages = agent.messages(refused.conversation)
    tool_results = [b["toolResult"] for m in messages for b in m["content"] if "toolResult" in b]
    assert tool_results[0]["status"] == "error" and tool_results[0]["content"][0]["text"] == prompt

    accepted = agent(str(tmp_path), sop=handle)  # same SOP, so the same conversation continues

    assert accepted.conversation == refused.conversation == f"sop-{handle.sop_id}"
    assert [(c.name, c.status) for c in accepted.tool_calls] == [("write_draft", "ok"), ("publish", "ok")]
    assert _calls(tmp_path) == ["write_draft", "publish"]
    assert (tmp_path / "draft.txt.published").read_text() == "hello"
    assert handle.result(timeout=60).published == [f"{tmp_path}/draft.txt.published"]
    assert _history(handle) == [
        ("PublishRequested", "rejected"),
        ("DraftRequested", "stayed"),
        ("DraftWritten", "transitioned"),
        ("PublishRequested", "stayed"),
        ("Published", "ended"),
    ]
    assert {entry.sender for entry in handle.history()} == {"guarded-writer"}  # who asked, in the log


def test_twenty_sops_drive_agents_concurrently_and_every_rejection_lands_in_its_own_sop(tmp_path: Path) -> None:
    once = _agent(ONCE_OFF_SCRIPT, "crowd-once", max_concurrency=8)
    twice = _agent(TWICE_OFF_SCRIPT, "crowd-twice", max_concurrency=8)
    runs = []
    for i in range(20):
        directory = tmp_path / f"sop{i}"
        directory.mkdir()
        runs.append((a.publishing_sop().start(), directory, once if i % 2 else twice))

    def drive(run: tuple[Any, Path, StrandsAgent]) -> Any:
        handle, directory, agent = run
        return agent(str(directory), sop=handle, timeout=300)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(drive, runs))

    for (handle, directory, agent), result in zip(runs, results, strict=True):
        own_prompt = (
            f"An error occured in Procedure Drafting: Cannot publish {directory}/draft.txt: write the draft first "
            "with write_draft.. Prompt for this procedure is Write the draft with write_draft."
        )
        published = f"{directory}/draft.txt.published"
        state = handle.result(timeout=60)
        assert state == a.PubState(drafts=[f"{directory}/draft.txt"], published=[published])
        assert _calls(directory) == ["write_draft", "publish"]
        assert result.text == f'Done: {{"path":"{published}","size":5}}'
        rejected = [c.message for c in result.rejected_tool_calls]
        expected = [("PublishRequested", "rejected"), ("DraftRequested", "stayed"), ("DraftWritten", "transitioned")]
        if agent is twice:
            assert rejected == [
                own_prompt,
                "An error occured in Procedure Publishing: The draft is written; publish it now.. Prompt for this "
                "procedure is Publish the draft with publish.",
            ]
            expected.append(("DraftRequested", "rejected"))
        else:
            assert rejected == [own_prompt]
        expected += [("PublishRequested", "stayed"), ("Published", "ended")]
        assert _history(handle) == expected


def test_with_sop_runs_the_agent_on_behalf_of_the_sop_in_another_process(tmp_path: Path, runtime: Any) -> None:
    agent = _agent(ONCE_OFF_SCRIPT, "with-block")
    sop = a.publishing_sop().from_agent(agent)
    with sop as run:
        result = agent(str(tmp_path))
    assert run.status().phase == "done"
    assert run.state().published == [f"{tmp_path}/draft.txt.published"]
    assert [c.status for c in result.tool_calls] == ["rejected", "ok", "ok"]
    assert _history(run)[0] == ("PublishRequested", "rejected")
    agent_pid = ray.get(_actor(agent, runtime).location.remote())["pid"]
    host_pid = ray.get(ray.get_actor(run.status().host, namespace=runtime.namespace).statistics.remote())["pid"]
    assert agent_pid != host_pid != os.getpid()


def test_an_sop_that_governs_another_agent_ignores_this_agents_tool_events(tmp_path: Path) -> None:
    agent = _agent([*GUARDED_SCRIPT[:1], "{result}"], "not-governed")
    handle = a.publishing_sop().from_agent("someone-else").start()
    (tmp_path / "draft.txt").write_text("x")
    result = agent(str(tmp_path), sop=handle)
    assert [c.status for c in result.tool_calls] == ["ok"]  # ignored by the SOP, so not vetoed
    assert _calls(tmp_path) == ["publish"]
    assert _history(handle) == [("PublishRequested", "ignored"), ("Published", "ignored")]


def test_submit_with_deliver_to_sends_agent_completed_into_the_sop(tmp_path: Path) -> None:
    model = ScriptedModel([{"tool": "shout", "input": {"text": "{prompt}"}}, "Said {result}"])
    agent = StrandsAgent(tools=[a.shout], model=model, name="deliverer")
    handle = a.publishing_sop().start()
    dispatcher = SOP(a.PubState(), a.Dispatching(agent)).start()

    receipt = dispatcher.send(a.Dispatch(payload="dispatched"))

    assert receipt.procedure == "AwaitingAgent"
    assert dispatcher.result(timeout=120).answer == "Said DISPATCHED"
    assert [e for e, _ in _history(dispatcher)] == ["Dispatch", "AgentCompleted"]
    future = agent.submit("driver", deliver_to=handle)
    assert isinstance(future, AgentFuture)
    assert future.result(timeout=120).text == "Said DRIVER"
    assert future.done()
    deadline = time.monotonic() + 60
    while ("AgentCompleted", "ignored") not in _history(handle) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ("AgentCompleted", "ignored") in _history(handle)  # Drafting has no handler: optional event


def test_an_agent_future_is_plain_data_that_reattaches_after_a_checkpoint() -> None:
    agent = StrandsAgent(tools=[a.shout], model=ScriptedModel(["echo {prompt}"]), name="reattach")
    future = agent.submit("stored")
    restored = decode_value(encode_value({"future": future}))["future"]
    assert restored == future
    assert restored.result(timeout=120).text == "echo stored"


def test_an_agent_called_inside_a_handler_runs_unguarded_without_deadlock(tmp_path: Path) -> None:
    (tmp_path / "draft.txt").write_text("body")
    agent = _agent([{"tool": "publish", "input": {"path": "{prompt}/draft.txt"}}, "{result}"], "in-handler")
    handle = SOP(a.PubState(), a.Delegating(agent)).start()
    receipt = handle.send(a.Dispatch(payload=str(tmp_path)), timeout=120)
    assert receipt.outcome.value == "ended"
    assert handle.state().answer == f'{{"path":"{tmp_path}/draft.txt.published","size":4}}'
    assert _history(handle) == [("Dispatch", "ended")]  # no tool events went to the busy SOP


def test_a_failing_tool_is_shown_to_the_model_and_a_failing_model_is_a_retryable_agent_error(tmp_path: Path) -> None:
    agent = _agent([{"tool": "publish", "input": {"path": "{prompt}/missing.txt"}}, "saw: {result}"], "failing-tool")
    result = agent(str(tmp_path))
    assert [c.status for c in result.tool_calls] == ["error"]
    assert "FileNotFoundError" in result.text or "No such file" in result.text

    offline = StrandsAgent(model="llamacpp:http://127.0.0.1:9", name="unreachable")  # nothing listens on 9
    with pytest.raises(AgentError) as caught:
        offline("hello", timeout=120)
    assert caught.value.retryable and caught.value.agent == "unreachable"
    handle = a.publishing_sop().start()
    future = offline.submit("hello", deliver_to=handle)
    with pytest.raises(AgentError):
        future.result(timeout=120)
    assert offline.statistics().errors == 2


def test_a_guarded_tool_that_fails_sends_the_sop_tool_failed_instead_of_its_result(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "started"  # its directory does not exist: the tool raises
    agent = StrandsAgent(
        tools=[a.slow_step],
        model=ScriptedModel([{"tool": "slow_step", "input": {"path": "{prompt}", "seconds": 0}}, "saw: {result}"]),
        name="failing-guarded",
    )
    handle = a.watching_sop().start()

    result = agent(str(missing), sop=handle)

    [call] = result.tool_calls
    assert call.status == "error" and "FileNotFoundError" in call.message
    assert result.text == f"saw: {call.message}"  # the model saw the tool's error
    assert _history(handle) == [("ToolUseRequested", "stayed"), ("ToolFailed", "stayed")]
    state = handle.state()
    assert state.uses == [call.tool_use_id] and state.results == []
    assert state.failures == [
        f"{call.tool_use_id}: error: agent=<failing-guarded>, call=<{result.call_id}>, tool=<slow_step> | {call.message}"
    ]


def test_statistics_count_calls_tokens_tool_calls_and_rejections(tmp_path: Path) -> None:
    agent = _agent(GUARDED_SCRIPT, "counted")
    handle = a.publishing_sop().start()
    first = agent(str(tmp_path), sop=handle)
    second = agent(str(tmp_path), sop=handle)
    stats = agent.statistics()
    assert (stats.agent, stats.calls, stats.errors, stats.in_flight) == ("counted", 2, 0, 0)
    assert (stats.tool_calls, stats.rejected_tool_calls) == (3, 1)
    assert stats.input_tokens == first.usage.input_tokens + second.usage.input_tokens > 0
    assert stats.output_tokens == first.usage.output_tokens + second.usage.output_tokens > 0
    assert stats.latency_seconds_buckets["+Inf"] == 2
    assert stats.latency_seconds_sum >= first.latency_seconds + second.latency_seconds - 1e-6


def test_a_cancelled_call_raises_a_cancelled_agent_error(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    agent = StrandsAgent(
        tools=[a.slow_step],
        model=ScriptedModel([{"tool": "slow_step", "input": {"path": "{prompt}", "seconds": 3}}, "finished"]),
        name="cancellable",
    )
    future = agent.submit(str(marker))
    _wait_for(marker)
    assert future.cancel()
    with pytest.raises(AgentError, match="Cancelled"):
        future.result(timeout=60)
    assert future.done()


def _wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_a_killed_agent_actor_restarts_and_resumes_the_conversation_from_its_session(runtime: Any) -> None:
    agent = StrandsAgent(tools=[a.shout], model=ScriptedModel(["first answer", "second answer"]), name="survivor")
    assert agent("one", conversation="kept").text == "first answer"
    actor = _actor(agent, runtime)
    before = ray.get(actor.location.remote())["pid"]
    ray.kill(actor, no_restart=False)
    # ray.kill returns before the process is gone: a call sent now could still start in the old
    # process and run again after the restart (documented). Wait for the new process first.
    after = wait_for(lambda: (here := ray.get(actor.location.remote()))["pid"] != before and here, what="the restart")
    assert after["restarted"]

    assert agent("two", conversation="kept", timeout=120).text == "second answer"
    texts = [b["text"] for m in agent.messages("kept") for b in m["content"] if "text" in b]
    assert texts == ["one", "first answer", "two", "second answer"]


def test_a_call_in_flight_when_the_agent_process_dies_is_run_again_and_reports_the_interrupted_tool(
    tmp_path: Path, runtime: Any
) -> None:
    marker = tmp_path / "started"
    slow = {"tool": "slow_step", "input": {"path": "{prompt}", "seconds": 60}}
    quick = {"tool": "slow_step", "input": {"path": "{prompt}", "seconds": 0}}
    agent = StrandsAgent(tools=[a.slow_step], model=ScriptedModel([slow, quick, "finished: {result}"]), name="sigkilled")
    handle = a.watching_sop().start()
    future = agent.submit(str(marker), sop=handle)
    _wait_for(marker)
    pid = ray.get(_actor(agent, runtime).location.remote())["pid"]
    os.kill(pid, signal.SIGKILL)

    result = future.result(timeout=180)

    assert ray.get(_actor(agent, runtime).location.remote())["pid"] != pid
    # The SOP heard how the interrupted tool call ended before the call went on.
    assert _history(handle) == [
        ("ToolUseRequested", "stayed"),
        ("ToolFailed", "stayed"),
        ("ToolUseRequested", "stayed"),
        ("ToolResultReady", "stayed"),
    ]
    state = handle.state()
    interrupted, rerun = state.uses
    assert state.results == [f"{rerun}: slow step finished"]
    [failure] = state.failures
    assert failure.startswith(f"{interrupted}: interrupted: agent=<sigkilled>, call=<{future.call_id}>, tool=<slow_step> | ")
    assert "Interrupted: the agent's process stopped while slow_step ran" in failure
    # The result says the call ran twice and lists the interrupted tool call.
    assert (result.stop_reason, result.text) == ("end_turn", "finished: slow step finished")
    assert (result.attempts, result.rerun) == (2, True)
    assert [(c.tool_use_id, c.status) for c in result.tool_calls] == [(interrupted, "interrupted"), (rerun, "ok")]
    assert failure.endswith(result.tool_calls[0].message)
    # The conversation went on from where it stopped: one prompt, the interrupted tool closed.
    messages = agent.messages(result.conversation)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    prompts = [b["text"] for m in messages if m["role"] == "user" for b in m["content"] if "text" in b]
    assert prompts == [str(marker)]
    closed = messages[2]["content"][0]["toolResult"]
    assert (closed["toolUseId"], closed["status"]) == (interrupted, "error")
    assert closed["content"][0]["text"] == result.tool_calls[0].message
    # Metrics count the re-run.
    stats = agent.statistics()
    assert (stats.reruns, stats.interrupted_tool_calls, stats.calls) == (1, 1, 1)
    url = f"http://127.0.0.1:{runtime.metrics_port}/metrics"
    wait_for(lambda: value(scrape(url), "sopy_agent_call_reruns_total", agent="sigkilled") == 1, what="the re-run in /metrics")


def test_a_call_whose_process_dies_after_it_answered_returns_that_answer_without_asking_the_model_again(
    tmp_path: Path, runtime: Any
) -> None:
    marker = tmp_path / "receiving"
    agent = StrandsAgent(model=ScriptedModel(["{prompt}", "asked twice"]), name="answered-then-killed")
    receiver = a.slowly_receiving_sop().start()
    future = agent.submit(str(marker), deliver_to=receiver)
    _wait_for(marker)  # the answer is in the conversation; the agent actor is delivering it
    pid = ray.get(_actor(agent, runtime).location.remote())["pid"]
    os.kill(pid, signal.SIGKILL)

    result = future.result(timeout=180)

    assert (result.text, result.attempts, result.tool_calls) == (str(marker), 2, ())
    assert [m["role"] for m in agent.messages(result.conversation)] == ["user", "assistant"]
    assert receiver.result(timeout=60).answer == str(marker)
    assert _history(receiver) == [("AgentCompleted", "ended")]  # delivered once


def test_agent_calls_tokens_and_tool_calls_reach_the_prometheus_endpoint(tmp_path: Path, runtime: Any) -> None:
    agent = _agent(GUARDED_SCRIPT, "metered-writer")
    handle = a.publishing_sop().start()
    refused, accepted = agent(str(tmp_path), sop=handle), agent(str(tmp_path), sop=handle)
    url = f"http://127.0.0.1:{runtime.metrics_port}/metrics"

    def exported() -> str | None:
        text = scrape(url)
        return text if value(text, "sopy_agent_calls_total", agent="metered-writer", outcome="ok") >= 2 else None

    text = wait_for(exported, what="the agent's calls in /metrics")
    assert value(text, "sopy_tool_calls_total", agent="metered-writer", tool="publish") == 2
    assert value(text, "sopy_tool_calls_total", agent="metered-writer", tool="write_draft") == 1
    assert value(text, "sopy_tool_calls_rejected_total", agent="metered-writer", tool="publish") == 1
    tokens = sum(r.usage.input_tokens for r in (refused, accepted))
    assert value(text, "sopy_agent_tokens_total", agent="metered-writer", direction="input") == tokens
    assert value(text, "sopy_agent_call_duration_seconds_count", agent="metered-writer") == 2


def test_shutdown_stops_the_agent_process_and_a_later_call_resumes_the_conversation(runtime: Any) -> None:
    agent = StrandsAgent(model=ScriptedModel(["first answer", "second answer"]), name="stoppable")
    assert agent("one", conversation="kept").text == "first answer"
    pid = ray.get(_actor(agent, runtime).location.remote())["pid"]

    agent.shutdown()

    wait_for(lambda: not psutil.pid_exists(pid), what="the agent process to exit")
    assert agent("two", conversation="kept", timeout=120).text == "second answer"
    assert ray.get(_actor(agent, runtime).location.remote())["pid"] != pid
    agent.shutdown()
    StrandsAgent(model=ScriptedModel(["x"]), name="never-started").shutdown()  # nothing to stop


def test_an_agent_needing_a_custom_resource_runs_on_a_node_that_offers_it() -> None:
    node = ray.util.get_node_ip_address()
    placed = StrandsAgent(model=ScriptedModel(["placed"]), name="placed-agent", resources={f"node:{node}": 0.001})
    assert placed.spec.resources == {f"node:{node}": 0.001}
    assert placed("where?", timeout=120).text == "placed"
    missing = StrandsAgent(model=ScriptedModel(["never"]), name="unplaceable-agent", resources={"no-such-resource": 1})
    try:
        with pytest.raises(TimeoutError):  # no node offers it: the actor cannot start
            missing("where?", timeout=5)
    finally:
        missing.shutdown()  # the pending actor: nothing will ever place it


def test_a_result_event_the_procedure_cannot_refuse_is_confirmed_before_the_call_answers() -> None:
    agent = StrandsAgent(
        tools=[a.note], model=ScriptedModel([{"tool": "note", "input": {"text": "{prompt}"}}, "Noted {result}"]), name="noter"
    )
    handle = a.noting_sop().start()

    noted = agent("good", sop=handle)

    assert [(c.name, c.status) for c in noted.tool_calls] == [("note", "ok")]
    assert handle.state().drafts == ["good"]  # committed when the call answered
    assert _history(handle) == [("NoteRequested", "stayed"), ("Noted", "stayed")]


def test_a_result_event_refused_after_the_model_went_on_is_reported_in_the_call_result() -> None:
    agent = StrandsAgent(
        tools=[a.note], model=ScriptedModel([{"tool": "note", "input": {"text": "{prompt}"}}, "Noted {result}"]), name="noter-bad"
    )
    handle = a.noting_sop().start()

    refused = agent("bad", sop=handle)

    assert refused.text == "Noted bad"  # the model was not told: it did not wait for the SOP
    ((name, status, message),) = [(c.name, c.status, c.message) for c in refused.tool_calls]
    assert (name, status) == ("note", "rejected")
    assert message.startswith("An error occured in Procedure Noting")
    assert _history(handle) == [("NoteRequested", "stayed"), ("Noted", "rejected")]
    assert handle.state().drafts == []


def test_a_submitted_call_whose_result_timed_out_answers_a_later_result(tmp_path: Path) -> None:
    slow = {"tool": "slow_step", "input": {"path": "{prompt}", "seconds": 2}}
    agent = StrandsAgent(tools=[a.slow_step], model=ScriptedModel([slow, "done: {result}"]), name="patient")
    future = agent.submit(str(tmp_path / "started"))
    with pytest.raises(TimeoutError):
        future.result(timeout=0.2)
    assert future.result(timeout=120).text == "done: slow step finished"
    assert future.result(timeout=10).text == "done: slow step finished"  # asked of the actor again
    assert agent.statistics().calls == 1  # one call, however often its result was asked for

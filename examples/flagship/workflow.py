"""The flagship: a monthly sales report produced by a team of agents under two SOPs.

The master SOP (`ReportSOP`) runs every pattern of the product at once:
- **delegation**: `Analysing` hands the data to the analyst agent and waits for its answer
  inside the handler (SOPy's blocking style);
- **parallel agents**: the same handler submits three checker agents; each completion comes
  back as an `AgentCompleted` event, handled in `Checking` as it arrives (no polling);
- **guarded tools**: the writer agent's `write_report` calls are events of the master, which
  refuses a report outside `reports/` or one that leaves out a check;
- **a sub-SOP**: `Writing` starts the `PublicationSOP` child, whose own guard makes the
  publisher stage the report before publishing it; the child's End reaches the master as
  `SubSOPCompleted`.

    Analysing -> Checking (until the three checks are in) -> Writing -> Publishing -> End
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from sopy_actors import (
    SOP,
    AgentCompleted,
    End,
    Event,
    Procedure,
    ProcedureOptions,
    StrandsAgent,
    SubSOPCompleted,
    cond,
    current_sop,
    handler,
    make_prompt,
)

CHECKS = ("completeness", "consistency", "freshness")

# These procedures only route events and call agents: one shared procedure actor (one process)
# serves them all instead of one actor per class.
LIGHT = ProcedureOptions(placement="shared")


class Team(BaseModel):
    """The agents of the report; procedures hand it on (agents are small, picklable handles)."""

    analyst: StrandsAgent
    checkers: dict[str, StrandsAgent]
    writer: StrandsAgent
    publisher: StrandsAgent


# -- the publication sub-SOP ------------------------------------------------------------------


class PublicationState(BaseModel):
    report_path: str
    staged_path: str | None = None
    published_path: str | None = None


class StageRequested(Event[str]):
    """The publisher is about to stage a report (payload: its path)."""


class ReportStaged(Event[str]):
    """A report was copied to the staging area (payload: the staged copy)."""


class PublishRequested(Event[str]):
    """The publisher is about to publish a staged report (payload: the staged copy)."""


class ReportPublished(Event[str]):
    """A report was published (payload: the published copy)."""


class Staging(Procedure[PublicationState]):
    sop_options = LIGHT
    prompt = make_prompt("Stage the report with stage_report.")

    @handler
    def on_stage(self, state: PublicationState, event: StageRequested) -> Procedure[PublicationState] | str:
        if event.payload != state.report_path:
            return f"Stage the report {state.report_path}, not {event.payload}."
        return self

    @handler
    def on_staged(self, state: PublicationState, event: ReportStaged) -> Procedure[PublicationState]:
        state.staged_path = event.payload
        return Releasing()

    @handler
    def on_early_publish(self, state: PublicationState, event: PublishRequested) -> str:
        return f"Nothing is staged yet: stage {state.report_path} with stage_report first."


class Releasing(Procedure[PublicationState]):
    sop_options = LIGHT
    prompt = make_prompt("Publish the staged report with publish_report.")

    @handler
    def on_publish(self, state: PublicationState, event: PublishRequested) -> Procedure[PublicationState] | str:
        if event.payload != state.staged_path:
            return f"Publish the staged copy {state.staged_path}, not {event.payload}."
        return self

    @handler
    def on_published(self, state: PublicationState, event: ReportPublished) -> Procedure[PublicationState]:
        state.published_path = event.payload
        return End(prompt=make_prompt("The report is published."))


class PublicationSOP(SOP[PublicationState]):
    """Stage, then publish, one report."""


# -- the master SOP ---------------------------------------------------------------------------


class ReportState(BaseModel):
    workdir: str
    month: str = ""
    findings: str = ""
    checks: dict[str, str] = Field(default_factory=dict)
    pending: dict[str, str] = Field(default_factory=dict)  # agent call id -> check
    report_path: str | None = None
    published_path: str | None = None
    tokens: dict[str, int] = Field(default_factory=dict)  # agent -> tokens of its calls


class ReportRequested(Event[str]):
    """Produce the report of a month (payload: YYYY-MM)."""


class ReportDraft(BaseModel):
    path: str
    markdown: str


class ReportDraftRequested(Event[ReportDraft]):
    """The writer is about to write the report file."""


class ReportWritten(Event[str]):
    """The report file was written (payload: its path)."""


class Analysing(Procedure[ReportState]):
    sop_options = LIGHT
    prompt = make_prompt("Analyse the month's sales, then have the data checked.")

    def __init__(self, team: Team) -> None:
        self.team = team

    @handler
    def on_request(self, state: ReportState, event: ReportRequested) -> Procedure[ReportState]:
        state.month = event.payload
        # Delegation: wait for the analyst inside the handler (its tools run unguarded here).
        analysis = self.team.analyst(f"Summarise the sales of {state.month} in {state.workdir}/sales.sqlite3.")
        state.findings = analysis.text
        state.tokens[self.team.analyst.name] = analysis.usage.total_tokens
        # Parallel agents: three checkers at once, each reporting back with AgentCompleted.
        me = current_sop()
        for check, checker in self.team.checkers.items():
            future = checker.submit(f"Check the {check} of {state.workdir}/sales.sqlite3.", deliver_to=me)
            state.pending[future.call_id] = check
        return Checking(self.team)


class Checking(Procedure[ReportState]):
    sop_options = LIGHT
    prompt = make_prompt("Wait for the three data checks.")

    def __init__(self, team: Team) -> None:
        self.team = team

    @handler
    def on_check_done(self, state: ReportState, event: AgentCompleted) -> Procedure[ReportState] | str:
        check = state.pending.pop(event.payload.call_id, None)
        if check is None:
            return f"Agent call {event.payload.call_id} is not a check of this report."
        if cond(event.payload.result is None, "the check failed"):
            state.checks[check] = f"FAILED: {event.payload.message}"
        else:
            state.checks[check] = event.payload.result.text
            state.tokens[event.payload.agent] = event.payload.result.usage.total_tokens
        if cond(bool(state.pending), "checks are still running"):
            return self
        # Guarded tools: the writer's write_report calls become events of this SOP.
        checks = "\n".join(f"- {check}: {result}" for check, result in sorted(state.checks.items()))
        self.team.writer.submit(
            f"Sales of {state.month}, for {state.workdir}/reports/{state.month}.md\n\n"
            f"## Findings\n{state.findings}\n\n## Checks\n{checks}",
            sop=current_sop(),
        )
        return Writing(self.team)


class Writing(Procedure[ReportState]):
    sop_options = LIGHT
    prompt = make_prompt("Write the report into reports/, with every check in it.")

    def __init__(self, team: Team) -> None:
        self.team = team

    @handler
    def on_draft(self, state: ReportState, event: ReportDraftRequested) -> Procedure[ReportState] | str:
        reports = str(Path(state.workdir) / "reports")
        if str(Path(event.payload.path).parent) != reports:
            return f"Write the report into {reports}/, not {event.payload.path}."
        missing = [check for check in state.checks if check not in event.payload.markdown.lower()]
        if missing:
            return f"The report must state the result of every check; it leaves out: {', '.join(missing)}."
        return self

    @handler
    def on_written(self, state: ReportState, event: ReportWritten) -> Procedure[ReportState]:
        state.report_path = event.payload
        # A sub-SOP: publication runs as a child of this SOP, driven by the publisher agent.
        child = PublicationSOP(state=PublicationState(report_path=event.payload), init_proc=Staging()).start()
        self.team.publisher.submit(f"Publish the report {event.payload}.", sop=child)
        return Publishing()


class Publishing(Procedure[ReportState]):
    sop_options = LIGHT
    prompt = make_prompt("Wait until the publication sub-SOP has published the report.")

    @handler
    def on_child_done(self, state: ReportState, event: SubSOPCompleted) -> Procedure[ReportState]:
        publication = event.payload.state_as(PublicationState)
        state.published_path = publication.published_path
        return End(prompt=make_prompt("The report is written, checked and published."))


class ReportSOP(SOP[ReportState]):
    """The monthly sales report."""


def report_sop(team: Team, workdir: str) -> ReportSOP:
    """The master SOP for a working directory (it holds sales.sqlite3 and reports/)."""
    return ReportSOP(state=ReportState(workdir=workdir), init_proc=Analysing(team), retry_limits=3)


def master_entry() -> Analysing:
    """The master's entry procedure without agents, for `sopy-actors graph/check` (they read code)."""
    return Analysing(Team.model_construct())

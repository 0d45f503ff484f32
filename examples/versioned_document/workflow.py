"""An agent edits a document, one paragraph per event; every commit is a version.

The document SOP holds a title, its paragraphs (a heading and a text each) and an edit log. Each
`EditRequested` event names a paragraph and an instruction; the handler hands both, with the
document, to the editor agent, whose tool `edit_paragraph` computes the edited document
deterministically from the instruction:

- `replace 'OLD' with 'NEW'`: in the paragraph's text;
- `append 'SENTENCE'`: at the end of the paragraph;
- `shorten to N words`: keeps the paragraph's first N words;
- `cut to the end`: removes the paragraph and every one after it (the bad edit of the example).

The handler then reviews the edit (`review`): every required section must still be there and
the document must keep at least half of its words. An edit that passes keeps the SOP in
`Editing`; one that fails is committed all the same (it is a version: history is never
rewritten) and moves the SOP to `EditFlagged`, which refuses further edits until someone rolls
the document back to a good version (`handle.rollback(v, reason=...)`, which restores that
version's procedure too) or accepts the edit after all (`FlagOverridden`). `Published` ends it.

Tools live at the top level of this module: agent actors import them by name (`sopy-actors
run` ships this directory to the cluster).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Procedure, cond, handler, make_prompt, tool
from sopy_actors.agents import AgentResult, ScriptedModel, StrandsAgent

MIN_WORDS_KEPT = 0.5  # an edit may not remove more than half of the document's words


class Paragraph(BaseModel):
    heading: str
    text: str


class EditRecord(BaseModel):
    """One edit as the handler reviewed it."""

    number: int
    heading: str
    instruction: str
    words_before: int
    words_after: int
    problems: list[str] = Field(default_factory=list)
    overridden: str | None = None  # why a person accepted it despite its problems


class Document(BaseModel):
    title: str
    paragraphs: list[Paragraph]
    required_sections: list[str]
    edit_log: list[EditRecord] = Field(default_factory=list)

    def words(self) -> int:
        return sum(len(paragraph.text.split()) for paragraph in self.paragraphs)

    def render(self) -> str:
        """The document as Markdown."""
        return "\n\n".join([f"# {self.title}", *(f"## {p.heading}\n{p.text}" for p in self.paragraphs)])


class Edit(BaseModel):
    paragraph: int
    instruction: str


class EditRequested(Event[Edit]):
    """Edit one paragraph of the document as the instruction says."""


class Published(Event[str]):
    """The document is final (payload: who published it)."""


class FlagOverridden(Event[str]):
    """A person accepts a flagged edit after all (payload: why)."""


# -- the editor agent's tool ------------------------------------------------------------------


def apply_instruction(paragraphs: list[dict[str, str]], index: int, instruction: str) -> list[dict[str, str]]:
    """The paragraphs after applying `instruction` to paragraph `index` (see the module docstring).

    Raises:
        ValueError: no such paragraph, an instruction it does not know, or text not found.
    """
    if not 0 <= index < len(paragraphs):
        raise ValueError(f"there is no paragraph {index}; the document has {len(paragraphs)}")
    edited = [dict(paragraph) for paragraph in paragraphs]
    text = edited[index]["text"]
    if match := re.fullmatch(r"replace '(.+?)' with '(.*?)'", instruction):
        if match[1] not in text:
            raise ValueError(f"{match[1]!r} is not in paragraph {index}")
        edited[index]["text"] = text.replace(match[1], match[2])
    elif match := re.fullmatch(r"append '(.+)'", instruction):
        edited[index]["text"] = f"{text} {match[1]}"
    elif match := re.fullmatch(r"shorten to (\d+) words", instruction):
        words = text.split()
        kept = " ".join(words[: int(match[1])])
        edited[index]["text"] = kept if len(words) <= int(match[1]) else f"{kept.rstrip('.,;')}."
    elif instruction == "cut to the end":
        del edited[index:]
    else:
        raise ValueError(f"unknown instruction {instruction!r}: use replace/append/shorten to N words/cut to the end")
    return edited


@tool
def edit_paragraph(request: str) -> dict[str, Any]:
    """Edit one paragraph of a document (request: JSON with paragraphs, paragraph, instruction).

    Instructions: `replace 'OLD' with 'NEW'`, `append 'SENTENCE'`, `shorten to N words`,
    `cut to the end`. Returns the document's paragraphs after the edit.
    """
    data = json.loads(request)
    paragraphs = apply_instruction(data["paragraphs"], int(data["paragraph"]), str(data["instruction"]))
    return {"paragraphs": paragraphs, "words": sum(len(p["text"].split()) for p in paragraphs)}


EDITOR = StrandsAgent(
    tools=[edit_paragraph],
    model=ScriptedModel([{"tool": "edit_paragraph", "input": {"request": "{prompt}"}}, "{result}"]),
    system_prompt="Edit the document as instructed with the edit_paragraph tool; answer with its result.",
    name="editor",
)


def tool_output(result: AgentResult, name: str) -> dict[str, Any]:
    """The JSON result of the agent's last successful call of tool `name`."""
    for call in reversed(result.tool_calls):
        if call.name == name and call.status == "ok":
            value: dict[str, Any] = json.loads(call.message)
            return value
    raise RuntimeError(f"the {result.agent} agent did not run {name} ({result.text!r})")


# -- the review -------------------------------------------------------------------------------


def review(document: Document, *, words_before: int) -> list[str]:
    """What is wrong with `document` after an edit: sections missing, too many words removed."""
    headings = {paragraph.heading for paragraph in document.paragraphs}
    problems = [f"section {section!r} is missing" for section in document.required_sections if section not in headings]
    if document.words() < MIN_WORDS_KEPT * words_before:
        problems.append(f"{words_before - document.words()} of {words_before} words removed")
    return problems


def is_good(document: Document) -> bool:
    """A version to go back to: all required sections there, its last edit passed review (or
    a person accepted it)."""
    last = document.edit_log[-1] if document.edit_log else None
    accepted = last is None or not last.problems or last.overridden is not None
    return accepted and not review(document, words_before=document.words())


# -- procedures -------------------------------------------------------------------------------


class Editing(Procedure[Document]):
    prompt = make_prompt("Edit the document one paragraph at a time; publish it when it is ready.")

    @handler
    def on_edit(self, state: Document, event: EditRequested) -> Procedure[Document]:
        edit = event.payload
        words_before = state.words()
        heading = state.paragraphs[edit.paragraph].heading if edit.paragraph < len(state.paragraphs) else "?"
        request = {"paragraphs": [p.model_dump() for p in state.paragraphs], **edit.model_dump()}
        # A conversation of its own per edit: each call plays the agent's script from the start.
        result = EDITOR(json.dumps(request), conversation=f"edit-{uuid.uuid4().hex}")
        result.raise_for_tool_errors()
        state.paragraphs = [Paragraph(**p) for p in tool_output(result, "edit_paragraph")["paragraphs"]]
        problems = review(state, words_before=words_before)
        state.edit_log.append(
            EditRecord(
                number=len(state.edit_log) + 1,
                heading=heading,
                instruction=edit.instruction,
                words_before=words_before,
                words_after=state.words(),
                problems=problems,
            )
        )
        if cond(problems, "the edit fails the review"):
            return EditFlagged()
        return self

    @handler
    def on_published(self, state: Document, event: Published) -> Procedure[Document]:
        return End()


class EditFlagged(Procedure[Document]):
    prompt = make_prompt("The last edit failed review: roll the document back to a good version.")

    @handler
    def on_edit(self, state: Document, event: EditRequested) -> Procedure[Document] | str:
        problems = "; ".join(state.edit_log[-1].problems)
        return f"The last edit failed review ({problems}): roll the document back before editing it again."

    @handler
    def on_overridden(self, state: Document, event: FlagOverridden) -> Procedure[Document]:
        state.edit_log[-1].overridden = event.payload
        return Editing()


INITIAL = Document(
    title="Soil moisture sensing pilot",
    paragraphs=[
        Paragraph(
            heading="Summary",
            text=(
                "We propose a six month pilot of low cost soil moisture sensors on three farms to cut irrigation "
                "water without lowering yields."
            ),
        ),
        Paragraph(
            heading="Background",
            text=(
                "Irrigation is scheduled by calendar on most farms in the region, so fields are often watered after "
                "rain. Sensors that report moisture at root depth let growers water only when the soil needs it."
            ),
        ),
        Paragraph(
            heading="Method",
            text=(
                "Each farm installs twelve sensors in paired plots, one half irrigated by sensor readings and one "
                "half by the usual calendar, and records water use and yield per plot."
            ),
        ),
        Paragraph(
            heading="Budget",
            text=("Sensors, gateways and installation cost 14,000 euros; analysis and reporting add 6,000 euros."),
        ),
        Paragraph(
            heading="Risks",
            text=("Sensors may drift or fail in wet clay, and a dry season may hide the difference between the plots."),
        ),
    ],
    required_sections=["Summary", "Background", "Method", "Budget", "Risks"],
)


def document_sop() -> SOP[Document]:
    """The SOP: the proposal, edited in `Editing` until it is published."""
    return SOP(INITIAL.model_copy(deep=True), Editing())

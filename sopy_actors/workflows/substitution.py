"""Prompt templates with plain-name substitution only: `{source}` and nothing more.

`str.format` would also evaluate `{0.__class__}`, `{x[0]}`, `{a.__globals__}` and format specs
(`{x:>99999}`), which let a template read attributes of whatever it is given. Here a
placeholder must be a plain parameter name: attribute access, indexing, positional fields,
conversions (`!r`) and format specs are refused with an error naming the placeholder, and
values are inserted as text, never formatted. `{{` and `}}` are literal braces. No eval, no
template engine. Pure Python.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from sopy_actors.errors import InputError

__all__ = ["ParameterValue", "fill_template", "placeholders"]

ParameterValue = str | int | float | bool

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _pieces(template: str, where: str) -> list[tuple[str, str | None]]:
    """(literal text, parameter name or None) pieces; InputError for anything but plain names."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise InputError(
            f"{where}: malformed template ({error}); write {{name}} for a parameter and {{{{ }}}} for braces", fields=(where,)
        ) from None
    pieces: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            pieces.append((literal, None))
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if not _NAME.match(name) or spec or conversion:
            raise InputError(
                f"{where}: placeholder {shown} is refused: only plain parameter names are substituted "
                "(no attribute access '.', indexing '[]', positional fields, conversions '!' or format "
                "specs ':'); write {name}",
                fields=(where,),
            )
        pieces.append((literal, name))
    return pieces


def placeholders(template: str, *, where: str = "template") -> list[str]:
    """The parameter names a template uses, in order of first use.

    Raises:
        InputError: a placeholder is not a plain name, or the template is malformed.
    """
    return list(dict.fromkeys(name for _, name in _pieces(template, where) if name is not None))


def fill_template(template: str, parameters: Mapping[str, ParameterValue], *, where: str = "template") -> str:
    """The template with each `{name}` replaced by its parameter's value as text.

    Args:
        template: text with `{name}` placeholders (`{{`/`}}` for literal braces).
        parameters: values by name: str, int, float or bool.
        where: how errors name the template (e.g. "steps[0].prompt_template").

    Raises:
        InputError: a placeholder is not a plain name, names no parameter, or a value is not
            a str, int, float or bool.
    """
    out: list[str] = []
    for literal, name in _pieces(template, where):
        out.append(literal)
        if name is None:
            continue
        if name not in parameters:
            known = ", ".join(sorted(parameters)) or "none"
            raise InputError(f"{where}: placeholder {{{name}}} names no parameter (parameters: {known})", fields=(where,))
        value = parameters[name]
        if not isinstance(value, str | int | float | bool):
            raise InputError(
                f"{where}: parameter {name!r} is a {type(value).__name__}; values are str, int, float or bool",
                fields=(name,),
            )
        out.append(str(value))
    return "".join(out)

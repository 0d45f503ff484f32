"""SOPy's `sopy.prompt`: `Prompt`, `make_prompt` and `cond`.

These are the core's own objects (`sopy_actors.core.procedure`), so the procedure graph
recognises `cond(value, "description")` and `make_prompt("...")` in handlers written against
either import path. Pure Python.
"""

from sopy_actors.core.procedure import Prompt, cond, make_prompt

__all__ = ["Prompt", "cond", "make_prompt"]

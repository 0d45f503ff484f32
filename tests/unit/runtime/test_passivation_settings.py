"""init()'s passivation arguments: Store config entries, bad values refused before Ray starts."""

from __future__ import annotations

import pytest

import sopy_actors
from sopy_actors.errors import InputError
from sopy_actors.runtime.connect import passivation_settings
from sopy_actors.runtime.instances import Passivation


def test_only_the_given_settings_become_store_entries() -> None:
    assert passivation_settings(None, None) == {}
    assert passivation_settings(30, None) == {"passivate_after": "30.0"}
    assert passivation_settings(None, 5) == {"max_live_sops": "5"}
    assert Passivation(idle_after=30).interval() == 10.0 and Passivation(idle_after=0.3).interval() == 0.15


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"passivate_after": 0}, "passivate_after"),
        ({"max_live_sops": 0}, "max_live_sops"),
        ({"passivate_after": "soon"}, "passivate_after"),
    ],
)
def test_bad_values_are_refused_naming_the_argument_before_ray_starts(arguments: dict[str, object], field: str) -> None:
    with pytest.raises(InputError, match=field) as caught:
        sopy_actors.init(**arguments)  # type: ignore[arg-type]
    assert caught.value.fields == (field,)

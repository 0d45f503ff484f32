"""Shared test settings."""

from hypothesis import settings

# Wall-clock deadlines flake on a loaded 2-core machine; the property is what is tested.
settings.register_profile("sopy", deadline=None, max_examples=100)
settings.load_profile("sopy")

"""The guard finds the location holding a path by looking its parents up: the same answer as trying every location."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from keycardd.guard import Guard, Location

names = st.sampled_from(["a", "b", "A", ".claude", "x.json", ""])
paths = st.lists(names, min_size=0, max_size=4).map(lambda parts: "/" + "/".join(parts))
"""Short paths over a few names (empty ones give `//`), so that paths often equal or sit inside locations."""


def _first_location(guard: Guard, key: str) -> str | None:
    for location, what in guard._keys:
        if key == location or key.startswith(location + "/"):
            return what
    return None


@settings(max_examples=500, deadline=None)
@given(st.lists(paths, min_size=1, max_size=6), paths, st.booleans())
def test_the_parent_lookup_finds_the_first_location_holding_the_path(
    locations: list[str], path: str, fold_case: bool
) -> None:
    guard = Guard([Location(one, f"location {index}") for index, one in enumerate(locations)], fold_case=fold_case)
    key = guard._key(path.rstrip("/") or "/")
    assert guard._location_holding(key) == _first_location(guard, key)

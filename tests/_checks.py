"""Assertions several test files share."""

from __future__ import annotations

import dataclasses

import pytest


def assert_field_error(cls, bad_fields: dict, field: str) -> None:
    """``bad_fields`` (one bad value per field of the dataclass ``cls``) covers every field, and
    ``cls(field=bad)`` raises the project's one error shape naming ``field`` and ``cls``."""
    assert {f.name for f in dataclasses.fields(cls)} == set(bad_fields)  # every field is covered
    with pytest.raises(ValueError, match=rf"^The '{field}' parameter of {cls.__name__} must be .* Got .* instead\.$"):
        cls(**{field: bad_fields[field]})

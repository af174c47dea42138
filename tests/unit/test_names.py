"""Names: the original's slug for domains, exact file names, and no path tricks anywhere."""

import pytest

from common import errors
from common.names import dataset_name, domain_name, form_domain_name, key_segment


def test_domain_is_slugged_like_the_original():
    assert domain_name("  My   Sales ") == "my-sales"
    assert form_domain_name("My%20Sales") == "my-sales"


def test_file_name_is_kept_exactly():
    assert dataset_name("Sales 2024 (final).CSV") == "Sales 2024 (final).CSV"


@pytest.mark.parametrize("bad", ["", "..", "a/../b", "a/b", "a\\b", "a\x00b", "a\x01b", "x" * 129, "..csv"])
def test_unsafe_names_are_refused(bad):
    with pytest.raises(errors.BadRequest):
        dataset_name(bad)
    with pytest.raises(errors.BadRequest):
        domain_name(bad)


def test_file_name_with_newline_is_refused():
    with pytest.raises(errors.BadRequest):
        dataset_name("a\nb.csv")


def test_key_segments_never_traverse_and_stay_short():
    for name in ["a b.csv", "ünïcode.csv", ".hidden", "%h123", "x" * 128, "é" * 128]:
        segment = key_segment(name)
        assert "/" not in segment and segment not in {".", ".."} and len(segment) <= 120
    assert key_segment("x" * 128) != key_segment("x" * 127 + "y")

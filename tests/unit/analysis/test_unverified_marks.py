"""Unverified numbers marked where they stand: a sign and a footnote in the Markdown, never inside code or links."""

from common.analysis.answer import unverified_numbers
from common.analysis.unverified_marks import UNVERIFIED_NOTE, mark_markdown, split_unverified

ROWS = [{"region": "North", "revenue": 1250.0}, {"region": "South", "revenue": 750.0}]


def test_each_unverified_number_gets_the_sign_and_the_answer_a_footnote():
    answer = "**Bottom line:** North made 1,250; the East made **4,321**, growing 37.2%, about 2.5M users."
    unverified = unverified_numbers(answer, ROWS)
    assert unverified == ["4,321", "37.2", "2.5M"]
    marked = mark_markdown(answer, unverified)
    assert marked == ("**Bottom line:** North made 1,250; the East made **4,321\u2020**, growing 37.2%\u2020, about "
                      f"2.5M\u2020 users.\n\n{UNVERIFIED_NOTE}\n")
    assert UNVERIFIED_NOTE.startswith("*\u2020 Not found in the query result")


def test_marking_is_idempotent_and_changes_no_verdict():
    answer = "The East made 4,321 and 4,321 again.\n\n| region | revenue |\n|---|---|\n| East | 4,321 |"
    unverified = unverified_numbers(answer, ROWS)
    marked = mark_markdown(answer, unverified)
    assert marked.count("4,321\u2020") == 3 and marked.count(UNVERIFIED_NOTE) == 1
    assert mark_markdown(marked, unverified) == marked
    assert unverified_numbers(marked, ROWS) == unverified  # the sign and the note add no number


def test_code_links_entities_and_list_markers_are_left_as_written():
    answer = ("12. the item 4321\n13. `4321` [see 4321](https://x.example/4321) <https://y.example/4321> "
              "https://z.example/4321 &#4321;\n\n```sql\nSELECT 4321\n```\n\n    4321 indented code\n\n"
              "[ref]: https://r.example/4321\n")
    marked = mark_markdown(answer, ["12", "13", "4321"])
    assert marked.startswith("12. the item 4321\u2020\n13. `4321` [see 4321\u2020](https://x.example/4321) "
                             "<https://y.example/4321> https://z.example/4321 &#4321;\n\n```sql\nSELECT 4321\n```\n\n"
                             "    4321 indented code\n\n[ref]: https://r.example/4321\n")


def test_nothing_to_mark_leaves_the_answer_unchanged():
    assert mark_markdown("North made 1,250.", []) == "North made 1,250."
    assert mark_markdown("Only in code: `4321`", ["4321"]) == "Only in code: `4321`"  # no footnote for no mark


def test_a_fence_left_open_is_closed_so_the_footnote_stays_text():
    marked = mark_markdown("East made 4321.\n\n~~~~\nunclosed code", ["4321"])
    assert marked == f"East made 4321\u2020.\n\n~~~~\nunclosed code\n~~~~\n\n{UNVERIFIED_NOTE}\n"


def test_text_splits_into_marked_and_plain_pieces():
    assert split_unverified("East 4,321\u2020 and 37.2% of 1,250", ["4,321", "37.2"]) == [
        ("East ", False), ("4,321\u2020", True), (" and ", False), ("37.2%", True), (" of 1,250", False)]
    assert split_unverified("no numbers", []) == [("no numbers", False)]

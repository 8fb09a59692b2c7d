"""Yes/no questions comparing reports: the evidence side by side and mechanical verdicts."""

from __future__ import annotations

from assistant.query import OutletMatcher
from assistant.yes_no import compare

from .factories import make_passage

OUTLETS = OutletMatcher(["Gazette", "Herald"])
PASSAGES = [
    make_passage(
        "The Gazette reported that the harbour board raised its fees for cargo ships.",
        article_id="g",
        source="Gazette",
        published="2023-10-02",
    ),
    make_passage(
        "The Herald reported that the harbour board cut its staff after the storm.",
        article_id="h",
        source="Herald",
        published="2023-10-05",
    ),
]


def _compare(question: str):  # type: ignore[no-untyped-def]
    return compare(question, PASSAGES, OUTLETS.find(question))


def test_before_and_after_are_settled_by_the_articles_dates() -> None:
    before = _compare(
        "Did the Gazette report on the harbour fees before the Herald reported on the staff cuts?"
    )
    after = _compare(
        "Did the Gazette report on the harbour fees after the Herald reported on the staff cuts?"
    )
    assert before is not None and before.verdict == "yes"
    assert after is not None and after.verdict == "no"
    assert [s.label for s in before.sides] == ["Gazette", "Herald"]
    assert "fees" in PASSAGES[0].text[before.sides[0].start : before.sides[0].end]


def test_before_or_after_is_answered_as_a_choice_not_a_verdict() -> None:
    found = _compare(
        "Did the Gazette report on the harbour fees before or after the Herald reported on "
        "the staff cuts?"
    )
    assert found is not None and found.verdict == "" and found.order == "before"


def test_a_judgement_of_meaning_gets_the_evidence_but_no_verdict() -> None:
    found = _compare(
        "Was the Gazette's report on the harbour consistent with the Herald's report on the "
        "harbour board after the storm?"
    )
    assert found is not None and len(found.sides) == 2 and found.verdict == ""


def test_a_date_after_before_is_not_a_second_report() -> None:
    found = _compare("Did the Gazette report on the harbour fees before 3 October?")
    assert found is None or found.verdict == ""


def test_did_both_is_yes_when_each_part_is_found() -> None:
    found = _compare("Did both the Gazette and the Herald report that the harbour board acted?")
    assert found is not None and found.verdict == "yes"


def test_not_a_yes_no_question_or_one_outlet_only_gives_nothing() -> None:
    assert _compare("Which board raised fees, as the Gazette and the Herald reported?") is None
    assert _compare("Did the Gazette report on the harbour fees?") is None


BILLS = [
    make_passage(
        "On Friday the Governor signed into law: S. 2959, the Harbour Fees Act.",
        article_id="s",
        source="Statehouse",
        published="2022-01-21",
    ),
    make_passage(
        "On Thursday the Governor signed into law: H.R. 1192, the Ferry Safety Act.",
        article_id="h",
        source="Statehouse",
        published="2022-01-20",
    ),
]


def test_two_named_events_are_ordered_by_the_dates_of_the_articles_naming_them() -> None:
    later = compare("Did the Governor sign S. 2959 before H.R. 1192?", BILLS, [])
    earlier = compare("Did the Governor sign H.R. 1192 before S. 2959?", BILLS, [])
    assert later is not None and later.verdict == "no"
    assert earlier is not None and earlier.verdict == "yes"
    assert [s.passage.article_id for s in later.sides] == ["s", "h"]
    # A thing no article names gives no sides and so no verdict.
    assert compare("Did the Governor sign S. 2959 before H.R. 4000?", BILLS, []) is None

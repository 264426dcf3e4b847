"""Units, tags, budget: removing the tags gives back the original context byte for byte."""

from __future__ import annotations

import random

import pytest

from rlhf.policies.emphasis.data import synthetic_examples
from rlhf.policies.emphasis.spans import (
    END_TAG, START_TAG, ContextAlteredError, TagInContextError, Unit, check_round_trip, emphasize,
    insert_tags, marked_fraction, parse_tagged, segment, strip_tags, validate_tagged,
    within_budget,
)

S, E = START_TAG, END_TAG


def texts(context, kind="sentence"):
    return [u.text(context) for u in segment(context, kind)]


def test_sentence_units():
    context = '  Mia lives in Oslo. "Really?" he asked!  Pi is 3.14 today\nTitle: no full stop'
    assert texts(context) == ["Mia lives in Oslo.", '"Really?"', "he asked!",
                              "Pi is 3.14 today", "Title: no full stop"]
    assert texts("") == [] and texts("   \n  ") == []
    assert texts("One") == ["One"]


def test_phrase_units_split_after_commas_semicolons_and_colons():
    context = "First, we eat; then: sleep. Next one, done."
    assert texts(context, "phrase") == ["First,", "we eat;", "then:", "sleep.", "Next one,",
                                        "done."]
    with pytest.raises(ValueError, match="unit must be"):
        segment(context, "word")


def test_units_never_overlap_and_hold_no_outer_whitespace():
    for row in synthetic_examples(20, seed=3):
        for kind in ("sentence", "phrase"):
            units = segment(row["context"], kind)
            for a, b in zip(units, units[1:]):
                assert a.end < b.start and row["context"][a.end:b.start].isspace()
            assert all(u.text(row["context"]) == u.text(row["context"]).strip() for u in units)


def test_round_trip_is_byte_exact_for_every_selection():
    rng = random.Random(0)
    for row in synthetic_examples(30, seed=1):
        context = row["context"]
        for kind in ("sentence", "phrase"):
            units = segment(context, kind)
            for _ in range(5):
                picked = rng.sample(range(len(units)), rng.randint(0, len(units)))
                tagged = emphasize(context, units, picked).tagged
                assert strip_tags(tagged).encode("utf-8") == context.encode("utf-8")
                plain, spans = parse_tagged(tagged)
                assert plain == context and all(context[s:e].strip() == context[s:e]
                                                for s, e in spans)


def test_tags_are_inserted_deterministically_and_adjacent_units_merge():
    context = "A b. C d. E f."
    units = segment(context)
    assert emphasize(context, units, [1]).tagged == f"A b. {S}C d.{E} E f."
    merged = emphasize(context, units, [2, 0, 1])  # any order, consecutive units -> one span
    assert merged.tagged == f"{S}A b. C d. E f.{E}" and merged.indices == (0, 1, 2)
    gap = emphasize(context, units, [0, 2])
    assert gap.tagged == f"{S}A b.{E} C d. {S}E f.{E}"
    assert emphasize(context, units, []).tagged == context
    # touching character spans (no whitespace between) keep one tag pair each
    touching = insert_tags("abcdef", [(0, 3), (3, 6)])
    assert touching == f"{S}abc{E}{S}def{E}" and strip_tags(touching) == "abcdef"
    assert insert_tags("abc", [(1, 1)]) == f"a{S}{E}bc"
    for bad in ([(2, 4), (1, 3)], [(0, 9)], [(3, 2)]):
        with pytest.raises(ValueError):
            insert_tags("abcdef", bad)


def test_unicode_contexts_round_trip_byte_for_byte():
    context = ("Zoë ate crème brûlée in Málaga. 東京に住んでいる。 Ça va? "
               "Emoji 😀 and a combining é here!\u00a0Non-breaking\u2003space.\r\nLast line ok")
    units = segment(context)
    assert len(units) >= 4
    for picked in ([0], [1, 2], list(range(len(units))), [len(units) - 1]):
        tagged = emphasize(context, units, picked).tagged
        assert strip_tags(tagged).encode("utf-8") == context.encode("utf-8")
    decomposed = "Cafe\u0301 noir. Done."
    tagged = emphasize(decomposed, segment(decomposed), [0]).tagged
    assert strip_tags(tagged) == decomposed and strip_tags(tagged) != "Café noir. Done."


def test_a_context_holding_a_tag_string_is_rejected():
    for context in (f"Mia said {S} once.", f"x {E} y.", f"{S}{E}"):
        with pytest.raises(TagInContextError):
            emphasize(context, segment(context), [0])
    # near misses are ordinary text and round-trip
    context = "<start_importan> and <end_important and start_important> stay."
    assert strip_tags(emphasize(context, segment(context), [0]).tagged) == context


def test_round_trip_check_catches_an_altered_context():
    check_round_trip("a b.", f"{S}a b.{E}")
    with pytest.raises(ContextAlteredError):
        check_round_trip("a b.", f"{S}a  b.{E}")
    with pytest.raises(ContextAlteredError):
        check_round_trip("a b.", f"{S}a b.{E}\n")


def test_budget_counts_whitespace_words_inside_marked_spans():
    context = "one two three. four five six seven. eight nine ten."  # 10 words
    units = segment(context)
    assert marked_fraction(context, []) == 0.0
    assert emphasize(context, units, [0]).marked_fraction == pytest.approx(0.3)
    assert emphasize(context, units, [1]).marked_fraction == pytest.approx(0.4)
    assert emphasize(context, units, [0, 1]).marked_fraction == pytest.approx(0.7)
    assert marked_fraction("", [(0, 0)]) == 0.0
    assert within_budget(0.3, 0.3) and not within_budget(0.31, 0.3)
    assert within_budget(0.1 + 0.2, 0.3)  # float noise does not break the budget


def test_validate_tagged_names_the_problem():
    context = "one two three. four five six seven. eight nine ten."
    assert validate_tagged(context, f"{S}one two three.{E} four five six seven. eight nine ten.",
                           0.3) is None
    assert "over budget" in validate_tagged(
        context, f"{S}one two three. four five six seven.{E} eight nine ten.", 0.5)
    assert validate_tagged(context, f"{S}one two three{E}. four five six seven. eight.",
                           1.0) == "the context was altered"
    assert "nested" in validate_tagged(context, f"{S}{S}one{E}{E}", 1.0)
    assert "never closed" in validate_tagged(context, f"{S}one", 1.0)
    assert "without" in validate_tagged(context, f"one{E}", 1.0)


def test_unit_helpers():
    assert Unit(2, 5).text("abcdefg") == "cde"

"""``asr.wer`` / ``asr.cer``: hand-computed cases, normalisers, edge cases, and jiwer agreement."""

import random

import jiwer
import pytest

from rewards.base import REWARDS
from rewards.verifiable.asr import CharErrorRate, WordErrorRate, edit_counts
from rewards.verifiable.text_normalize import normalize_basic, normalize_whisper_en
from rlhf.errors import UserError


def one(reward, hyp, ref, **columns):
    return reward.score_batch(["p"], [hyp], reference=[ref], **columns)[0]


def test_registered_under_the_short_names():
    assert REWARDS.get("asr.wer") is WordErrorRate
    assert REWARDS.get("asr.cer") is CharErrorRate


def test_wer_hand_computed_substitution_and_deletion():
    s = one(WordErrorRate(), "the dog", "the cat sat")  # cat->dog (S), sat deleted (D)
    assert s.details == {"wer": 2 / 3, "substitutions": 1, "deletions": 1, "insertions": 0,
                         "n_ref": 3}
    assert s.value == pytest.approx(1 / 3)


def test_wer_insertions_beyond_n_give_a_negative_reward():
    s = one(WordErrorRate(), "a b c d", "a")  # 3 insertions over 1 reference word
    assert s.details["wer"] == 3.0 and s.details["insertions"] == 3
    assert s.value == -2.0  # not clipped


@pytest.mark.parametrize("cls, key", [(WordErrorRate, "wer"), (CharErrorRate, "cer")])
def test_empty_reference_both_ways(cls, key):
    both = one(cls(), "", "")
    assert both.value == 1.0 and both.details[key] == 0.0 and both.details["n_ref"] == 0
    only_ref_empty = one(cls(), "hello there", "  ...  ")  # empty after normalisation
    assert only_ref_empty.value == 0.0 and only_ref_empty.details[key] == 1.0
    assert only_ref_empty.details["insertions"] > 0


def test_empty_hypothesis_deletes_everything():
    s = one(WordErrorRate(), "", "one two three")
    assert s.value == 0.0 and s.details["deletions"] == 3


def test_cer_counts_spaces_as_characters():
    s = one(CharErrorRate(), "ab c", "abc")  # one inserted space over 3 characters
    assert s.details == {"cer": 1 / 3, "substitutions": 0, "deletions": 0, "insertions": 1,
                         "n_ref": 3}
    s = one(CharErrorRate(), "ab", "a b")  # reference "a b" has 3 characters, space deleted
    assert s.details["n_ref"] == 3 and s.details["deletions"] == 1
    assert s.value == pytest.approx(2 / 3)


def test_cer_hand_computed_kitten_sitting():
    s = one(CharErrorRate(normalizer="none"), "sitting", "kitten")  # 2 S + 1 I over 6
    assert (s.details["substitutions"], s.details["insertions"]) == (2, 1)
    assert s.details["cer"] == 0.5 and s.value == 0.5


def test_basic_normaliser_lowercases_deletes_punctuation_folds_space():
    assert normalize_basic("  Hello,   WORLD!\t«Oui» — it's ") == "hello world oui its"
    assert normalize_basic("5$ + 3%") == "5$ + 3"  # symbols are kept, only punctuation goes
    assert one(WordErrorRate(), "hello world", "Hello, World!").value == 1.0
    none = one(WordErrorRate(normalizer="none"), "hello world", "Hello, World!")
    assert none.details["substitutions"] == 2


def test_none_normaliser_keeps_the_text_for_cer():
    s = one(CharErrorRate(normalizer="none"), "Ab", "ab ")  # A/a substituted, space deleted
    assert (s.details["substitutions"], s.details["deletions"], s.details["n_ref"]) == (1, 1, 3)


def test_whisper_en_normaliser():
    assert normalize_whisper_en("Mr. Smith paid twenty-five dollars, colour!") == \
        "mister smith paid $25 colour"  # empty spelling mapping: colour is kept
    assert one(WordErrorRate(normalizer="whisper_en"), "Mister Smith isn't here",
               "Mr. Smith is not here.").value == 1.0


def test_completion_ids_are_ignored_and_chat_completions_read():
    reward = WordErrorRate()
    values = reward(["p", "p"], [[{"role": "assistant", "content": "a b"}], "a c"],
                    reference=["a b", "a b"], completion_ids=[[1, 2], [3]])
    assert values == [1.0, 0.5]


def test_batch_and_row_paths_agree_and_repeated_references():
    reward = WordErrorRate()
    hyps = ["the cat", "a cat sat", "the cat sat down"]
    batch = reward.score_batch(["p"] * 3, hyps, reference="The cat sat.")  # scalar column
    rows = [reward.score_row("p", h, reference="The cat sat.") for h in hyps]
    assert [b.details for b in batch] == [r.details for r in rows]


def test_bad_row_is_none_with_error_and_batch_goes_on():
    out = WordErrorRate().score_batch(["p", "p"], ["a", "a"], reference=[None, "a"])
    assert out[0].value is None and "reference must be a string" in out[0].details["error"]
    assert out[1].value == 1.0


def test_bad_params_are_user_errors_naming_the_reward():
    with pytest.raises(UserError, match=r"reward 'asr.wer': bad parameters: normalizer"):
        WordErrorRate(normalizer="nope")
    with pytest.raises(UserError, match=r"reward 'asr.cer': bad parameters: extra"):
        CharErrorRate(extra=1)


def test_edit_counts_split_is_consistent():
    assert edit_counts("abc", "abc") == (0, 0, 0)
    assert edit_counts("abc", "") == (0, 3, 0)
    assert edit_counts("", "xy") == (0, 0, 2)
    s, d, i = edit_counts("a b c d".split(), "b x d e".split())
    assert i - d == 0 and s + d + i == 3


def _random_pairs(n, seed=1234):
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 5)))
             for _ in range(60)]
    pairs = []
    for _ in range(n):
        ref = [rng.choice(vocab) for _ in range(rng.randint(1, 25))]
        hyp = list(ref)
        for _ in range(rng.randint(0, 12)):
            op = rng.random()
            if op < 0.35 and hyp:
                hyp[rng.randrange(len(hyp))] = rng.choice(vocab)
            elif op < 0.65 and hyp:
                del hyp[rng.randrange(len(hyp))]
            else:
                hyp.insert(rng.randint(0, len(hyp)), rng.choice(vocab))
        pairs.append((" ".join(ref), " ".join(hyp)))
    return pairs


@pytest.mark.parametrize("cls, key, process", [
    (WordErrorRate, "wer", jiwer.process_words),
    (CharErrorRate, "cer", jiwer.process_characters),
])
def test_agrees_with_jiwer_on_300_random_pairs(cls, key, process):
    pairs = _random_pairs(300)
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    scored = cls(normalizer="none").score_batch([""] * len(pairs), hyps, reference=refs)
    jiwer_rate = jiwer.wer if key == "wer" else jiwer.cer
    for s, ref, hyp in zip(scored, refs, hyps):
        out = process(ref, hyp)
        assert abs(s.details[key] - jiwer_rate(ref, hyp)) <= 1e-12
        assert abs(s.value - (1 - getattr(out, key))) <= 1e-12
        assert (s.details["substitutions"], s.details["deletions"], s.details["insertions"]) \
            == (out.substitutions, out.deletions, out.insertions)
    assert any(s.value < 0 for s in scored) or key == "cer"  # insertions > N are exercised

"""Semantic IDs: residual quantiser, uniqueness, collision resolution, SID tokens round trip."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf.errors import UserError
from rlhf.policies.rerank.data import SyntheticConfig, synthetic_catalogue
from rlhf.policies.rerank.semantic_ids import (
    SID_BEGIN, SID_END, ResidualQuantizer, SemanticIDs, add_sid_tokens, build_semantic_ids,
    find_sids, load_semantic_ids, parse_sid, resolve_collisions, save_with_sids, sid_string,
    sid_tokens, uniqueness,
)


@pytest.fixture(scope="module")
def catalogue():
    return synthetic_catalogue(SyntheticConfig(), np.random.default_rng(0))[0]


def test_uniqueness_counts_items_with_a_code_of_their_own():
    codes = np.array([[0, 1], [0, 1], [0, 2], [1, 1]])
    assert uniqueness(codes) == 0.5  # two of four items share (0, 1)
    assert uniqueness(np.array([[0, 0], [0, 1]])) == 1.0


def test_synthetic_catalogue_is_unique_before_resolution(catalogue):
    sids = build_semantic_ids(catalogue.item_ids, catalogue.embeddings, levels=4,
                              codebook_size=32, seed=0)
    assert sids.stats["uniqueness_before"] >= 0.99
    assert sids.stats["uniqueness_after"] == 1.0
    assert len(set(sids.items.values())) == len(catalogue.item_ids)
    assert all(len(code) == 4 and all(0 <= c < 32 for c in code) for code in sids.items.values())


def test_small_codebooks_collide_and_resolution_makes_every_id_unique(catalogue):
    items, emb = catalogue.item_ids[:300], catalogue.embeddings[:300]
    sids = build_semantic_ids(items, emb, levels=4, codebook_size=16, seed=0)
    assert sids.stats["uniqueness_before"] < 0.99 and sids.stats["moved"] > 0
    assert sids.stats["uniqueness_after"] == 1.0
    assert len(set(sids.items.values())) == len(items)


def test_quantiser_is_deterministic(catalogue):
    items, emb = catalogue.item_ids[:300], catalogue.embeddings[:300]
    a = ResidualQuantizer(4, 16, seed=3).fit(emb).encode(emb)
    b = ResidualQuantizer(4, 16, seed=3).fit(emb).encode(emb)
    assert np.array_equal(a, b)
    first = build_semantic_ids(items, emb, 4, 16, seed=1)
    again = build_semantic_ids(items, emb, 4, 16, seed=1)
    assert first.items == again.items and first.stats == again.stats


def test_levels_quantise_residuals_and_reduce_the_error(catalogue):
    x = catalogue.embeddings
    errors = []
    for levels in (1, 2, 4):
        q = ResidualQuantizer(levels, 16, seed=0).fit(x)
        errors.append(float(((q.reconstruct(q.encode(x)) - x) ** 2).sum(1).mean()))
    assert errors[0] > errors[1] > errors[2]


def test_collision_resolution_by_hand():
    # 2 levels, codebook of 4 at the last level (1-d). Items 0, 1, 2 share the code (0, 1); item
    # 3 holds (0, 2); item 4 holds (1, 1) under another prefix.
    codes = np.array([[0, 1], [0, 1], [0, 1], [0, 2], [1, 1]])
    book = np.array([[0.0], [1.0], [2.0], [3.0]])
    residuals = np.array([[1.2], [0.9], [1.6], [2.0], [1.0]])
    resolved, moved = resolve_collisions(codes, residuals, book)
    # item 1 is nearest to codeword 1 (|0.9 - 1| = 0.1) and keeps it; item 0 (0.2 away) goes
    # next, to its nearest unused code under prefix 0: 0 (distance 1.2; 2 is used by item 3);
    # item 2 (0.6 away) then takes 3 (distance 1.4; 0, 1 and 2 are taken).
    assert resolved.tolist() == [[0, 0], [0, 1], [0, 3], [0, 2], [1, 1]]
    assert moved == 2
    assert uniqueness(resolved) == 1.0


def test_collision_resolution_fails_when_a_prefix_is_full():
    """A user's codebook too small for the catalogue: a UserError naming the option to raise."""
    codes = np.zeros((3, 2), dtype=int)
    with pytest.raises(UserError, match=r"prefix \(0,\) holds more than 2 items.*"
                                        r"raise semantic_ids.codebook_size"):
        resolve_collisions(codes, np.zeros((3, 1)), np.array([[0.0], [1.0]]))


def test_sid_strings_round_trip():
    text = sid_string((97, 168, 137, 135))
    assert text == "<|sid_begin|><s_a_97><s_b_168><s_c_137><s_d_135><|sid_end|>"
    assert parse_sid(text) == (97, 168, 137, 135)
    other = sid_string((1, 2, 3, 4))
    assert find_sids("x" + text + "y" + other) == [text, other]
    for bad in ("<s_a_1>", SID_BEGIN + "<s_b_1><s_a_2>" + SID_END, text + text):
        with pytest.raises(ValueError):
            parse_sid(bad)
    assert sid_tokens(2, 3) == [SID_BEGIN, SID_END, "<s_a_0>", "<s_a_1>", "<s_a_2>", "<s_b_0>",
                                "<s_b_1>", "<s_b_2>"]


def test_tokenizer_with_sids_saves_and_reloads_with_the_policy(tmp_path):
    import torch

    from rlhf.models import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer("tiny:lm")
    model = load_causal_lm("tiny:lm")
    before = len(tokenizer)
    old_rows = model.get_input_embeddings().weight.detach().clone()
    added = add_sid_tokens(tokenizer, model, levels=4, codebook_size=8)
    assert added == 2 + 4 * 8 and len(tokenizer) == before + added
    weight = model.get_input_embeddings().weight
    assert weight.shape[0] == len(tokenizer)
    assert torch.equal(weight[:before], old_rows)  # old rows kept
    # new rows: distinct draws of N(mean, std^2) of the old elements (dim 64: pairwise distance
    # ~ sqrt(2 * 64) std = 11 std), not transformers' near-identical mean rows
    new = weight[before:].detach()
    distances = torch.cdist(new, new) + 1e9 * torch.eye(len(new))
    assert distances.min() > 5 * old_rows.std()
    assert abs(float(new.std()) - float(old_rows.std())) < 0.2 * float(old_rows.std())
    again = load_causal_lm("tiny:lm")
    add_sid_tokens(load_tokenizer("tiny:lm"), again, levels=4, codebook_size=8)
    assert torch.equal(again.get_input_embeddings().weight[before:], new)  # seeded
    assert model.get_output_embeddings().weight.shape[0] == len(tokenizer)
    assert add_sid_tokens(tokenizer, model, 4, 8) == 0  # idempotent

    sids = SemanticIDs(4, 8, {"x": (1, 2, 3, 4), "y": (7, 0, 0, 1)}, {"uniqueness_after": 1.0})
    text = "History: " + sids.sid("x") + '\n{"recommendations":["' + sids.sid("y") + '"]}'
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_tokens_to_ids("<s_c_3>") in ids
    assert ids.count(tokenizer.convert_tokens_to_ids(SID_BEGIN)) == 2
    # one token per SID code; decoding keeps them even when special tokens are skipped
    assert tokenizer.decode(ids, skip_special_tokens=True) == text

    out = save_with_sids(model, tokenizer, sids, tmp_path / "policy")
    reloaded_tok = load_tokenizer(str(out))
    reloaded = load_causal_lm(str(out))
    assert len(reloaded_tok) == len(tokenizer)
    assert reloaded_tok(text, add_special_tokens=False)["input_ids"] == ids
    assert reloaded.get_input_embeddings().weight.shape == weight.shape
    assert torch.equal(reloaded.get_input_embeddings().weight, weight)
    assert load_semantic_ids(out) == sids

"""Stages of the generative reranker (GR2): ``rerank_data`` and ``rerank_eval``.

``rerank_data`` builds everything the training stages read:

- the catalogue (synthetic, or an Amazon-reviews-form interaction file) and its semantic IDs
  (``semantic_ids.json``; uniqueness before/after collision resolution in the metrics);
- ``model/``: the base policy with the SID tokens added to its tokenizer and its embedding
  matrix resized (the ``sft`` stage starts from it, and saves the extended tokenizer with its
  own model, which the ``grpo``/``dapo`` stages then load);
- ``sft.jsonl``: prompt + completion warm-start traces of the scripted teacher, kept by rejection
  sampling (a trace only if its top item is the hidden ground truth);
- ``train.jsonl``: RL prompts of the training users whose candidates hold the target, with the
  ``candidates`` and ``target`` columns that ``rerank.conditional`` / ``rerank.plain`` read;
- ``heldout.jsonl``: one example per held-out user (all of them, candidates with or without the
  target), for ``rerank_eval``; ``eval_prompts.jsonl``: the first ``n_eval_prompts`` held-out
  examples whose candidates hold the target (the RL stage's before/after reward);
- ``catalogue.jsonl``: item, SID, title, category.

``rerank_eval`` ranks the held-out examples with the pre-ranker's order (``pre_rank``) and with
each model (greedy decoding unless ``temperature`` > 0), and reports Recall@1, Recall@5, NDCG@5,
the order-copy rate and the valid-answer rate (:mod:`rlhf.policies.rerank.metrics`) as
``eval/<label>/<metric>``, on its own stage run and, with ``log_to_parent`` (the default), on the
recipe's parent MLflow run (:meth:`rlhf.tracking.StageTracker.log_parent_metrics`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rlhf.errors import UserError
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SyntheticOptions(_Block):
    """The synthetic catalogue and users (see :mod:`rlhf.policies.rerank.data`)."""

    n_items: int = Field(600, ge=20)
    n_categories: int = Field(8, ge=1)
    n_subcategories: int = Field(4, ge=1)
    dim: int = Field(16, ge=2)
    """Dimension of the latent item and user factors (= the embeddings quantised)."""
    noise_scale: float = Field(0.25, ge=0)
    subcategory_scale: float = Field(0.6, ge=0)
    user_noise: float = Field(0.3, ge=0)
    temperature: float = Field(0.3, gt=0)
    """Softmax temperature of the next-item choice (lower: more predictable users)."""
    recency: float = Field(1.0, ge=0)
    """Weight of the last item in the next item's score (the sequential signal)."""
    n_train_users: int = Field(2000, ge=1)
    n_heldout_users: int = Field(200, ge=1)


class InteractionOptions(_Block):
    """A real interaction file (Amazon reviews form); see :func:`load_interactions`."""

    path: str
    """JSON lines / JSON / CSV / Parquet (``.gz`` allowed) with user, item, timestamp."""
    metadata: str | None = None
    """Optional item file with titles and categories."""
    embedding_dim: int = Field(16, ge=2)
    """Item embeddings: truncated SVD of the user-item matrix, this many dimensions."""
    heldout_fraction: float = Field(0.1, gt=0, lt=1)
    """Share of users held out for evaluation."""
    windows: int = Field(1, ge=1)
    """Training examples per training user (the last ``windows`` positions)."""


class QuantizerOptions(_Block):
    levels: int = Field(4, ge=1, le=8)
    codebook_size: int | list[int] = 32
    """Codes per level: one size for every level, or a list with one size per level."""
    n_init: int = Field(4, ge=1)
    """k-means restarts per level."""
    min_uniqueness: float | None = Field(None, ge=0, le=1)
    """Fail when the uniqueness before collision resolution is lower (None: report only)."""


class PrerankOptions(_Block):
    n_candidates: int = Field(10, ge=2)
    """K."""
    hit_rate: float = Field(0.9, ge=0, le=1)
    """Share of examples whose candidates include the true next item."""
    n_hard: int = Field(1, ge=0)
    """Candidates taken from the best-scored items (hard negatives); the rest are random."""
    noise: float = Field(1.0, ge=0)
    """Noise of the pre-rank order, in units of the candidates' score spread."""


class TeacherOptions(_Block):
    noise: float = Field(0.1, ge=0)
    """Noise of the scripted teacher's scores, in units of their spread over the candidates."""
    max_tries: int = Field(4, ge=1)
    """Rejection sampling: traces drawn per example at most; the first whose top item is the
    target is kept."""
    max_examples: int | None = Field(None, ge=1)
    """Teacher budget: the teacher is asked about the first ``max_examples`` training examples
    only (``None``: all). The RL prompts are every training example, so RL sees users that the
    warm start never did, as when the teacher is a costly larger model."""


class RerankDataOptions(StageOptions):
    model: str = "tiny:lm"
    """Base policy whose tokenizer gets the SID tokens (hub id, path or ``tiny:lm``)."""
    trust_remote_code: bool = False
    source: Literal["synthetic", "interactions"] = "synthetic"
    synthetic: SyntheticOptions = SyntheticOptions()
    interactions: InteractionOptions | None = None
    history_len: int = Field(5, ge=1)
    """History items in a prompt (the most recent ones)."""
    semantic_ids: QuantizerOptions = QuantizerOptions()
    prerank: PrerankOptions = PrerankOptions()
    teacher: TeacherOptions = TeacherOptions()
    item_ids: Literal["label", "sid"] = "label"
    """How the answer names candidates: ``label`` (the letter before each candidate's SID in the
    prompt) or ``sid`` (the SID string); see :mod:`rlhf.policies.rerank.prompts`."""
    label_position: Literal["before", "after"] = "before"
    """``label`` form: each candidate's letter ``before`` its SID (``A<sid>``) or ``after`` it
    (``<sid>A``); with ``after`` the teacher's explanation names its pick by the whole SID and
    letter, so the answer's letter is copied from the prompt rather than looked up backwards."""
    metadata: list[Literal["category", "title"]] = Field(default_factory=list)
    """Item fields shown in the prompt next to the SIDs (empty: SIDs only)."""
    n_eval_prompts: int = Field(32, ge=1)
    """Held-out prompts for the RL stage's before/after reward (``eval_prompts.jsonl``)."""

    @model_validator(mode="after")
    def _source(self) -> RerankDataOptions:
        from rlhf.policies.rerank.semantic_ids import level_sizes

        level_sizes(self.semantic_ids.levels, self.semantic_ids.codebook_size)
        if self.source == "interactions" and self.interactions is None:
            raise ValueError("source: interactions needs an 'interactions: {path: ...}' block")
        if self.item_ids == "label" and self.prerank.n_candidates > 26:
            raise ValueError("item_ids: label names at most 26 candidates")
        return self


def _load_source(ctx: StageContext, opts: RerankDataOptions, rng: np.random.Generator
                 ) -> tuple[Any, Any, list[Any], list[Any]]:
    """(catalogue, synthetic config or None, training sequences, held-out sequences)."""
    from rlhf.policies.rerank import data

    if opts.source == "synthetic":
        s = opts.synthetic
        cfg = data.SyntheticConfig(s.n_items, s.n_categories, s.n_subcategories, s.dim,
                                   s.noise_scale, s.subcategory_scale, s.user_noise,
                                   s.temperature, s.recency)
        catalogue, subs = data.synthetic_catalogue(cfg, rng)
        length = opts.history_len + 1
        train = data.synthetic_sequences(cfg, catalogue, subs, s.n_train_users, length, rng)
        held = data.synthetic_sequences(cfg, catalogue, subs, s.n_heldout_users, length, rng,
                                        first_user=s.n_train_users)
        return catalogue, cfg, train, held
    io = opts.interactions
    assert io is not None
    sequences, titles, categories = data.load_interactions(
        ctx.path(io.path), ctx.path(io.metadata) if io.metadata else None, min_length=2)
    item_ids, emb = data.svd_item_embeddings(sequences, io.embedding_dim, ctx.seed)
    catalogue = data.Catalogue(item_ids, emb, titles, categories)
    order = rng.permutation(len(sequences))
    n_held = max(1, int(round(io.heldout_fraction * len(sequences))))
    if n_held >= len(sequences):
        raise UserError(f"{io.path}: {len(sequences)} users are too few to hold some out")
    held = [sequences[i] for i in sorted(order[:n_held])]
    train = [sequences[i] for i in sorted(order[n_held:])]
    return catalogue, None, train, held


def run_data(ctx: StageContext, opts: RerankDataOptions) -> StageResult:
    from rlhf.data import write_jsonl
    from rlhf.models import load_causal_lm, load_tokenizer
    from rlhf.policies.rerank import data
    from rlhf.policies.rerank.prompts import (
        build_prompt, candidate_labels, explanation, format_answer,
    )
    from rlhf.policies.rerank.semantic_ids import (
        add_sid_tokens, build_semantic_ids, save_with_sids,
    )

    rng = np.random.default_rng(ctx.seed)
    catalogue, synthetic, train_seqs, held_seqs = _load_source(ctx, opts, rng)
    q = opts.semantic_ids
    sids = build_semantic_ids(catalogue.item_ids, catalogue.embeddings, q.levels,
                              q.codebook_size, seed=ctx.seed)
    before = sids.stats["uniqueness_before"]
    if q.min_uniqueness is not None and before < q.min_uniqueness:
        raise UserError(f"semantic IDs: uniqueness before collision resolution {before:.4f} is "
                        f"below semantic_ids.min_uniqueness {q.min_uniqueness}; raise "
                        "semantic_ids.codebook_size")

    cfg = data.PrerankConfig(opts.prerank.n_candidates, opts.prerank.hit_rate,
                             opts.prerank.n_hard, opts.prerank.noise)
    min_items = opts.prerank.n_candidates + opts.history_len + 1
    if len(catalogue.item_ids) < min_items:
        raise UserError(f"the catalogue has {len(catalogue.item_ids)} items; K candidates plus "
                        f"a history need at least {min_items}")
    windows = opts.interactions.windows if opts.interactions else 1
    train = data.make_examples(catalogue, train_seqs, opts.history_len, cfg, rng, windows)
    held = data.make_examples(catalogue, held_seqs, opts.history_len, cfg, rng, 1)

    def info(sid_to_item: dict[str, str]) -> Any:
        if not opts.metadata:
            return None
        sources = {"category": catalogue.categories, "title": catalogue.titles}

        def text(sid: str) -> str:
            item = sid_to_item[sid]
            return "; ".join(sources[f].get(item, "?") for f in opts.metadata)
        return text

    describe = info(sids.by_sid())

    def record(e: data.Example) -> dict[str, Any]:
        """A prompt record; ``candidates`` / ``target`` in the answer's id form (a target the
        pre-ranker missed keeps its SID: it is not among the candidates)."""
        hist = [sids.sid(i) for i in e.history]
        cands = [sids.sid(c) for c in e.candidates]
        labels = candidate_labels(len(cands)) if opts.item_ids == "label" else None
        ids = labels or cands
        target = ids[e.candidates.index(e.target)] if e.hit else sids.sid(e.target)
        prompt = build_prompt(hist, cands, describe, labels,
                              label_after=opts.label_position == "after")
        return {"prompt": prompt, "candidates": ids,
                "target": target, "user": e.user, "target_item": e.target,
                "candidate_items": list(e.candidates), "hit": e.hit}

    teacher = data.TeacherConfig(opts.teacher.noise, opts.teacher.max_tries)
    rl_rows, sft_rows, tries, attempted = [], [], 0, 0
    for e in train:
        if not e.hit:
            continue
        row = record(e)
        rl_rows.append(row)
        if opts.teacher.max_examples is not None and attempted >= opts.teacher.max_examples:
            continue
        attempted += 1
        pick, used = data.teacher_trace(e, catalogue, synthetic, teacher, rng)
        tries += used
        if pick is not None:
            pick_id = row["candidates"][e.candidates.index(pick)]
            copied = pick_id if opts.label_position == "after" and opts.item_ids == "label" \
                else None
            answer = format_answer(data.promote(row["candidates"], pick_id),
                                   explanation([sids.sid(i) for i in e.history],
                                               sids.sid(pick), copied))
            sft_rows.append({"prompt": row["prompt"], "completion": answer})
    if not rl_rows or not sft_rows:
        raise UserError("no training example holds its target among the candidates (or the "
                        "teacher never found it): raise prerank.hit_rate or teacher.max_tries")
    held_rows = [record(e) for e in held]
    eval_rows = [r for r in held_rows if r["hit"]][:opts.n_eval_prompts]
    if not eval_rows:
        raise UserError("no held-out example holds its target among the candidates: raise "
                        "prerank.hit_rate")

    tokenizer = load_tokenizer(ctx.resolve(opts.model), opts.trust_remote_code)
    model = load_causal_lm(ctx.resolve(opts.model), opts.trust_remote_code)
    added = add_sid_tokens(tokenizer, model, q.levels, q.codebook_size, seed=ctx.seed)
    lengths = [len(tokenizer(r["prompt"] + r["completion"], add_special_tokens=False)
                   ["input_ids"]) + 1 for r in sft_rows]
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and max(lengths) > limit:
        raise UserError(f"prompt + answer take up to {max(lengths)} tokens, more than the "
                        f"model's {limit} positions: shorten history_len, drop metadata, or use "
                        "a model with a longer context")
    save_with_sids(model, tokenizer, sids, ctx.stage_dir / "model")
    sids.save(ctx.stage_dir)
    catalogue_rows = [{"item": i, "sid": sids.sid(i), "title": catalogue.titles.get(i),
                       "category": catalogue.categories.get(i)} for i in catalogue.item_ids]
    files = {"train": rl_rows, "sft": sft_rows, "heldout": held_rows,
             "eval_prompts": eval_rows, "catalogue": catalogue_rows}
    for name, rows in files.items():
        write_jsonl(ctx.stage_dir / f"{name}.jsonl", rows)

    metrics = {
        "sid/uniqueness_before": before,
        "sid/uniqueness_after": sids.stats["uniqueness_after"],
        "sid/moved": sids.stats["moved"],
        "sid/reconstruction_mse": sids.stats["reconstruction_mse"],
        "sid/tokens_added": float(added),
        "data/n_items": float(len(catalogue.item_ids)),
        "data/n_rl_prompts": float(len(rl_rows)),
        "data/n_sft": float(len(sft_rows)),
        "data/teacher_acceptance": len(sft_rows) / attempted,
        "data/teacher_tries_mean": tries / attempted,
        "data/n_heldout": float(len(held_rows)),
        "data/heldout_hit_rate": float(np.mean([r["hit"] for r in held_rows])),
        "data/max_tokens": float(max(lengths)),
    }
    summary = [f"{len(catalogue.item_ids)} items, semantic IDs unique: {before:.2%} before, "
               f"{sids.stats['uniqueness_after']:.2%} after resolution",
               f"{len(sft_rows)} teacher traces kept of {attempted} "
               f"({len(sft_rows) / attempted:.0%}),"
               f" {len(rl_rows)} RL prompts, {len(held_rows)} held-out users"]
    outputs = {"model": "model", "semantic_ids": "semantic_ids.json",
               **{name: f"{name}.jsonl" for name in files}}
    return StageResult(metrics=metrics, outputs=outputs, summary=summary)


# -- evaluation -----------------------------------------------------------------------------------
class RerankEvalOptions(StageOptions):
    data: str
    """Held-out records with ``prompt``, ``candidates``, ``target``
    (``@<data stage>/heldout.jsonl``)."""
    models: dict[str, str] = Field(default_factory=dict)
    """Label -> model (``@sft/model``, ``@rl/model``, a path or hub id), e.g. ``sft``, ``rl``."""
    pre_rank: bool = True
    """Also score the pre-ranker's own order, as ``pre_rank``."""
    max_new_tokens: int = Field(160, ge=1)
    temperature: float = Field(0.0, ge=0)
    """0: greedy decoding; > 0: sampling at this temperature."""
    batch_size: int = Field(32, ge=1)
    log_to_parent: bool = True
    """Also log ``eval/<label>/<metric>`` on the recipe's parent MLflow run."""
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _something(self) -> RerankEvalOptions:
        if not self.models and not self.pre_rank:
            raise ValueError("nothing to evaluate: name models or keep pre_rank: true")
        return self


def generate(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int,
             temperature: float, batch_size: int, seed: int) -> list[str]:
    """One completion per prompt (greedy when ``temperature`` is 0), SID tokens kept."""
    import torch

    tokenizer.padding_side = "left"
    model.eval()
    out: list[str] = []
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} \
        if temperature > 0 else {"do_sample": False}
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for start in range(0, len(prompts), batch_size):
            enc = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                            add_special_tokens=False)
            gen = model.generate(**enc, max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id, **sampling)
            out.extend(tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:],
                                              skip_special_tokens=True))
    return out


def run_eval(ctx: StageContext, opts: RerankEvalOptions) -> StageResult:
    from rlhf.data import load_records, write_jsonl
    from rlhf.models import load_causal_lm, load_tokenizer
    from rlhf.policies.rerank.metrics import ranking_metrics
    from rlhf.policies.rerank.prompts import parse_recommendations
    from rewards.rerank import candidate_ids
    from rewards.verifiable.json_values import item_id

    rows = load_records(ctx.path(opts.data), "prompt").rows
    for n, r in enumerate(rows, start=1):
        if "candidates" not in r or "target" not in r:
            raise UserError(f"{opts.data}: row {n} lacks 'candidates' or 'target'")
    candidates = [candidate_ids(r["candidates"]) for r in rows]
    targets = [item_id(r["target"]) for r in rows]
    metrics: dict[str, float] = {}
    predictions: list[dict[str, Any]] = []
    rankings: dict[str, list[list[str] | None]] = {}
    if opts.pre_rank:
        rankings["pre_rank"] = [list(c) for c in candidates]
    for label, spec in opts.models.items():
        if label == "pre_rank":
            raise UserError("rerank_eval.models: 'pre_rank' is the pre-ranker's own label")
        path = ctx.resolve(spec)
        tokenizer = load_tokenizer(path, opts.trust_remote_code)
        model = load_causal_lm(path, opts.trust_remote_code)
        texts = generate(model, tokenizer, [r["prompt"] for r in rows], opts.max_new_tokens,
                         opts.temperature, opts.batch_size, ctx.seed)
        rankings[label] = [parse_recommendations(t) for t in texts]
        predictions += [{"model": label, "user": r.get("user"), "target": t, "completion": c}
                        for r, t, c in zip(rows, targets, texts, strict=True)]
        del model
    summary = []
    for label, ranked in rankings.items():
        scores = ranking_metrics(ranked, candidates, targets)
        metrics.update({f"eval/{label}/{k}": v for k, v in scores.items()})
        summary.append(f"{label}: R@1 {scores['recall_at_1']:.3f}, R@5 {scores['recall_at_5']:.3f},"
                       f" NDCG@5 {scores['ndcg_at_5']:.3f}, order copy "
                       f"{scores['order_copy_rate']:.2f}, valid {scores['valid_rate']:.2f}")
    metrics["eval/n_examples"] = float(len(rows))
    write_jsonl(ctx.stage_dir / "predictions.jsonl", predictions)
    ctx.tracker.log_artifact(ctx.stage_dir / "predictions.jsonl")
    if opts.log_to_parent:
        ctx.tracker.log_parent_metrics(metrics)
    return StageResult(metrics=metrics, outputs={"predictions": "predictions.jsonl"},
                       summary=summary)


DATA_STAGE = StageSpec(RerankDataOptions, run_data,
                       "GR2 data: catalogue, semantic IDs, SID tokenizer, teacher traces, prompts")
EVAL_STAGE = StageSpec(RerankEvalOptions, run_eval,
                       "GR2 evaluation: Recall@1/5, NDCG@5, order-copy rate on held-out users")

"""Semantic IDs (GR2, arXiv 2602.07774): a residual quantiser over item embeddings, unique codes,
and the SID tokens added to a policy's tokenizer.

Quantiser (:class:`ResidualQuantizer`): ``levels`` codebooks of ``codebook_size`` vectors (one
size for every level, or a list with one size per level). Level
``l`` quantises the residual left by levels ``< l`` to its nearest codeword. Each codebook is
scikit-learn's k-means on that level's residuals (``n_init`` restarts, seeded), i.e. GR2's k-means
initialisation. GR2 then trains an encoder with EMA codebook updates; over fixed embeddings an
EMA update would leave converged k-means centroids where they are, so there is no further step
here, and a codebook's spare codes (fewer items than codes) are never nearest to anything.
Everything is seeded, so the same embeddings and parameters give the same codes.

Uniqueness (:func:`uniqueness`) is the share of items whose code tuple no other item has.
:func:`resolve_collisions` makes the codes unique: within each group of items sharing a full code
tuple the item nearest to the last-level codeword keeps it, and every other one gets the nearest
*unused* last-level code under the same first ``levels - 1`` codes. When a prefix has no unused
code left, raise ``codebook_size`` (a :class:`ValueError` says so).

SID text: ``<|sid_begin|><s_a_N><s_b_N><s_c_N><s_d_N><|sid_end|>`` (levels named ``a``, ``b``,
...). :func:`add_sid_tokens` adds these tokens to a tokenizer as ordinary (not special) added
tokens, so that decoding with ``skip_special_tokens=True`` keeps them, and resizes the model's
embedding matrix (distinct, seeded random rows for the new tokens); :func:`save_with_sids` /
:func:`load_semantic_ids` save and reload the tokenizer, the model and the item -> code table
together.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlhf.errors import UserError

SID_BEGIN, SID_END = "<|sid_begin|>", "<|sid_end|>"
LEVEL_NAMES = "abcdefgh"
SIDS_FILE = "semantic_ids.json"
_SID_RE = re.compile(re.escape(SID_BEGIN) + r"((?:<s_[a-h]_\d+>)+)" + re.escape(SID_END))
_CODE_RE = re.compile(r"<s_([a-h])_(\d+)>")


# -- quantiser ------------------------------------------------------------------------------------
def level_sizes(levels: int, codebook_size: int | list[int] | tuple[int, ...]) -> list[int]:
    """The codebook size of each level: one size for all, or one per level."""
    sizes = [int(codebook_size)] * levels if isinstance(codebook_size, int) \
        else [int(c) for c in codebook_size]
    if len(sizes) != levels:
        raise ValueError(f"codebook_size lists {len(sizes)} sizes for {levels} levels")
    if min(sizes) < 2:
        raise ValueError(f"codebook sizes must be at least 2, got {codebook_size}")
    return sizes


class ResidualQuantizer:
    """Residual k-means quantiser: ``levels`` codebooks of ``codebook_size`` codewords."""

    def __init__(self, levels: int = 4, codebook_size: int | list[int] = 16, seed: int = 0,
                 n_init: int = 4) -> None:
        if not 1 <= levels <= len(LEVEL_NAMES):
            raise ValueError(f"levels must be in 1..{len(LEVEL_NAMES)}, got {levels}")
        self.sizes = level_sizes(levels, codebook_size)
        self.levels, self.codebook_size = levels, codebook_size
        self.seed, self.n_init = seed, n_init
        self.codebooks: list[np.ndarray] = []

    def fit(self, embeddings: np.ndarray) -> ResidualQuantizer:
        """Fit the codebooks to ``embeddings`` [n_items, dim], level by level."""
        from sklearn.cluster import KMeans

        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"embeddings must be [n_items >= 2, dim], got shape {x.shape}")
        residual = x.copy()
        self.codebooks = []
        for level, size in enumerate(self.sizes):
            k = min(size, len(x))
            km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.seed + level)
            labels = km.fit_predict(residual)
            book = np.zeros((size, x.shape[1]))
            book[:k] = km.cluster_centers_
            if k < size:  # more codes than items: park the spares far away
                book[k:] = (np.abs(x).max() + 1.0) * 1e3
            self.codebooks.append(book)
            residual = residual - book[labels]
        return self

    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        """Codes [n_items, levels] (int), greedily level by level."""
        if not self.codebooks:
            raise RuntimeError("fit the quantiser first")
        residual = np.asarray(embeddings, dtype=np.float64).copy()
        codes = np.zeros((len(residual), self.levels), dtype=np.int64)
        for level, book in enumerate(self.codebooks):
            codes[:, level] = _nearest(residual, book)
            residual = residual - book[codes[:, level]]
        return codes

    def last_residuals(self, embeddings: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """What the last level quantises: the embeddings minus the first ``levels - 1``
        codewords of ``codes``."""
        residual = np.asarray(embeddings, dtype=np.float64).copy()
        for level in range(self.levels - 1):
            residual = residual - self.codebooks[level][codes[:, level]]
        return residual

    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        return sum(book[codes[:, i]] for i, book in enumerate(self.codebooks))


def _nearest(x: np.ndarray, book: np.ndarray) -> np.ndarray:
    d = (x ** 2).sum(1)[:, None] - 2 * x @ book.T + (book ** 2).sum(1)[None, :]
    return d.argmin(axis=1)


def uniqueness(codes: np.ndarray) -> float:
    """Share of items whose full code tuple no other item has (1.0 = all IDs unique)."""
    codes = np.asarray(codes)
    if len(codes) == 0:
        return 1.0
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return float((counts[inverse.ravel()] == 1).mean())


def resolve_collisions(codes: np.ndarray, last_residuals: np.ndarray, last_codebook: np.ndarray
                       ) -> tuple[np.ndarray, int]:
    """Unique codes: colliding items move to the nearest unused last-level code of their prefix.

    ``last_residuals`` [n, dim]: what the last level quantises; ``last_codebook`` [size, dim].
    In each collision group (items in index order) the item nearest to the shared last-level
    codeword keeps the code (ties: the lower index); the others, nearest first, take the nearest
    code unused by any item with the same prefix. Returns the new codes and how many items moved.
    Raises ``ValueError`` when a prefix runs out of codes."""
    codes = np.array(codes, dtype=np.int64, copy=True)
    size = len(last_codebook)
    used: dict[tuple[int, ...], set[int]] = {}
    for row in codes:
        used.setdefault(tuple(int(c) for c in row[:-1]), set()).add(int(row[-1]))
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, row in enumerate(codes):
        groups.setdefault(tuple(row), []).append(i)
    dist = ((last_residuals[:, None, :] - last_codebook[None, :, :]) ** 2).sum(-1)  # [n, size]
    moved = 0
    for key in sorted(k for k, members in groups.items() if len(members) > 1):
        members = sorted(groups[key], key=lambda i: (dist[i, key[-1]], i))
        prefix = tuple(int(c) for c in key[:-1])
        for i in members[1:]:
            free = [c for c in np.argsort(dist[i], kind="stable") if int(c) not in used[prefix]]
            if not free:
                raise UserError(f"semantic IDs: prefix {prefix} holds more than {size} items, so "
                                "the IDs cannot be made unique: raise semantic_ids.codebook_size "
                                "(or semantic_ids.levels)")
            codes[i, -1] = int(free[0])
            used[prefix].add(int(free[0]))
            moved += 1
    return codes, moved


# -- SID text and tokens ----------------------------------------------------------------------
def sid_string(code: Any) -> str:
    """``<|sid_begin|><s_a_3><s_b_0>...<|sid_end|>`` of one code tuple."""
    return SID_BEGIN + "".join(f"<s_{LEVEL_NAMES[i]}_{int(c)}>" for i, c in enumerate(code)) + \
        SID_END


def parse_sid(text: str) -> tuple[int, ...]:
    """The code tuple of one SID string (``ValueError`` if it is not exactly one SID)."""
    m = _SID_RE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not a semantic ID: {text!r}")
    pairs = _CODE_RE.findall(m.group(1))
    if [p[0] for p in pairs] != list(LEVEL_NAMES[:len(pairs)]):
        raise ValueError(f"semantic-ID levels out of order: {text!r}")
    return tuple(int(n) for _, n in pairs)


def find_sids(text: str) -> list[str]:
    """Every SID string in ``text``, in order."""
    return [m.group(0) for m in _SID_RE.finditer(text)]


def sid_tokens(levels: int, codebook_size: int | list[int]) -> list[str]:
    """The vocabulary of SIDs: begin, end, then ``<s_<level>_<n>>`` level by level."""
    return [SID_BEGIN, SID_END] + [f"<s_{LEVEL_NAMES[lv]}_{n}>"
                                   for lv, size in enumerate(level_sizes(levels, codebook_size))
                                   for n in range(size)]


def add_sid_tokens(tokenizer: Any, model: Any | None, levels: int,
                   codebook_size: int | list[int], seed: int = 0) -> int:
    """Add the SID tokens to ``tokenizer`` (not as special tokens, so decoding keeps them) and
    resize ``model``'s token embeddings. Returns how many tokens were new.

    New rows (input embeddings, and output embeddings when they are not tied) are drawn from
    ``N(mean, std^2)`` of the old rows' elements with a generator seeded by ``seed``: distinct
    random vectors. transformers' ``mean_resizing`` gives every new token nearly the same vector
    (covariance scaled by 1e-9), so the 130 code tokens start indistinguishable and a small
    policy takes many steps to tell ``<s_a_3>`` from ``<s_a_7>``."""
    import torch

    added = tokenizer.add_tokens(sid_tokens(levels, codebook_size), special_tokens=False)
    old = model.get_input_embeddings().weight.shape[0] if model is not None else 0
    if model is not None and old < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        gen = torch.Generator().manual_seed(seed)
        layers = [model.get_input_embeddings(), model.get_output_embeddings()]
        seen: set[int] = set()
        with torch.no_grad():
            for layer in layers:
                if layer is None or id(layer.weight) in seen:
                    continue
                seen.add(id(layer.weight))
                w = layer.weight
                mean, std = w[:old].mean(), w[:old].std()
                w[old:] = mean + std * torch.randn(w.shape[0] - old, w.shape[1], generator=gen,
                                                   dtype=torch.float32).to(w.dtype)
    return added


@dataclass
class SemanticIDs:
    """The item -> code table of a catalogue, with the quantiser's shape and statistics."""

    levels: int
    codebook_size: int | list[int]
    items: dict[str, tuple[int, ...]]
    stats: dict[str, float] = field(default_factory=dict)

    def sid(self, item: str) -> str:
        return sid_string(self.items[item])

    def by_sid(self) -> dict[str, str]:
        """SID string -> item id (IDs are unique after :func:`resolve_collisions`)."""
        return {sid_string(code): item for item, code in self.items.items()}

    def save(self, directory: Path | str) -> Path:
        path = Path(directory) / SIDS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"levels": self.levels, "codebook_size": self.codebook_size, "stats": self.stats,
                "items": {k: list(v) for k, v in self.items.items()}}
        path.write_text(json.dumps(data), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: Path | str) -> SemanticIDs:
        data = json.loads((Path(directory) / SIDS_FILE).read_text(encoding="utf-8"))
        size = data["codebook_size"]
        return cls(int(data["levels"]), size if isinstance(size, int) else list(size),
                   {k: tuple(v) for k, v in data["items"].items()}, dict(data.get("stats", {})))


def build_semantic_ids(item_ids: list[str], embeddings: np.ndarray, levels: int = 4,
                       codebook_size: int | list[int] = 16, seed: int = 0) -> SemanticIDs:
    """Quantise ``embeddings`` (one row per item of ``item_ids``) into unique semantic IDs.

    ``stats``: ``uniqueness_before`` / ``uniqueness_after`` (share of items with a code tuple of
    their own, before and after collision resolution), ``moved`` (items given a new last code),
    ``reconstruction_mse``."""
    if len(item_ids) != len(embeddings) or len(set(item_ids)) != len(item_ids):
        raise ValueError("item_ids must be distinct, one per embedding row")
    quantizer = ResidualQuantizer(levels, codebook_size, seed).fit(embeddings)
    codes = quantizer.encode(embeddings)
    before = uniqueness(codes)
    mse = float(((quantizer.reconstruct(codes) - embeddings) ** 2).sum(1).mean())
    resolved, moved = resolve_collisions(codes, quantizer.last_residuals(embeddings, codes),
                                         quantizer.codebooks[-1])
    stats = {"uniqueness_before": before, "uniqueness_after": uniqueness(resolved),
             "moved": float(moved), "reconstruction_mse": mse}
    return SemanticIDs(levels, codebook_size,
                       {item: tuple(int(c) for c in row) for item, row in zip(item_ids, resolved,
                                                                             strict=True)},
                       stats)


def save_with_sids(model: Any, tokenizer: Any, sids: SemanticIDs, path: Path | str) -> Path:
    """Save a policy whose tokenizer holds the SID tokens: weights, tokenizer, item table."""
    from rlhf.models import save_model

    out = Path(path)
    save_model(model, tokenizer, out, merge=True)
    sids.save(out)
    return out


def load_semantic_ids(path: Path | str) -> SemanticIDs:
    """The item table saved next to a policy by :func:`save_with_sids`."""
    return SemanticIDs.load(path)

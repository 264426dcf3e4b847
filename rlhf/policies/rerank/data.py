"""Sequential-recommendation data for the generative reranker: a synthetic generator, a loader
for Amazon-reviews-form interaction files, the noisy pre-ranker and the scripted teacher.

**Synthetic catalogue** (:func:`synthetic_catalogue`, :func:`synthetic_sequences`): items have
latent factors ``e_i = c_k + s_kj + noise_scale * n_i`` (category ``k``, sub-category ``j``);
users have latent factors ``u = c_k + s_kj + user_noise * n`` around a favourite category and
sub-category. A user's items are drawn one after another, without repeats, with probability
``softmax((u . e_i + recency * e_last . e_i) / temperature)``: the taste (``u``) and the last item
(``e_last``, the sequential part) decide what comes next. The last item of a sequence is the
hidden ground truth; the ones before it the history.

**Interaction files** (:func:`load_interactions`): rows with a user, an item and a timestamp, and
optionally a title and a category, as in the Amazon reviews dumps (2014/2018: ``reviewerID``,
``asin``, ``unixReviewTime``; 2023: ``user_id``, ``parent_asin``, ``timestamp``; ratings-only CSV
``user,item,rating,timestamp`` without a header). JSON lines (``.jsonl``/``.json``, optionally
``.gz``), JSON arrays, CSV (``.csv``/``.csv.gz``) and Parquet are read; an optional metadata file
gives titles and categories by item. Item embeddings for real data come from a truncated SVD of
the user-item matrix (:func:`svd_item_embeddings`), so everything works offline.

**Pre-ranker** (:func:`prerank`): scores items by the history's mean embedding; the candidates
are the ``n_hard`` best-scored items (hard negatives), random items to fill ``K``, and the true
next item in a fraction ``hit_rate`` of cases; they are ordered by that score plus Gaussian noise
(``noise`` x the scores' spread), so the target lands at a noisy position.

**Teacher** (:func:`teacher_trace`): a scripted oracle with noise ranks the candidates by a
privileged score (the user's true latent taste on synthetic data; the history score on real data)
plus noise; its trace promotes its top item to the front and keeps the others in the pre-rank
order. Rejection sampling keeps a trace only if its top item is the hidden ground truth.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlhf.errors import DataError


@dataclass
class Catalogue:
    """Items with embeddings and optional metadata (``title``, ``category``)."""

    item_ids: list[str]
    embeddings: np.ndarray
    titles: dict[str, str] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {item: i for i, item in enumerate(self.item_ids)}


@dataclass
class Sequence:
    """One user's items in time order; ``taste`` is the latent factor (synthetic data only)."""

    user: str
    items: list[str]
    taste: np.ndarray | None = None


@dataclass
class Example:
    """One reranking instance: history, pre-ranked candidates and the hidden next item."""

    user: str
    history: list[str]
    candidates: list[str]
    target: str
    taste: np.ndarray | None = None

    @property
    def hit(self) -> bool:
        """Whether the pre-ranker's candidates include the target."""
        return self.target in self.candidates


# -- synthetic data -------------------------------------------------------------------------------
@dataclass
class SyntheticConfig:
    n_items: int = 600
    n_categories: int = 8
    n_subcategories: int = 4
    dim: int = 16
    noise_scale: float = 0.25
    """Spread of items around their sub-category."""
    subcategory_scale: float = 0.6
    """Spread of sub-categories around their category."""
    user_noise: float = 0.3
    temperature: float = 0.5
    recency: float = 0.5
    """Weight of the last item in the next item's score (the sequential signal)."""


def synthetic_catalogue(cfg: SyntheticConfig, rng: np.random.Generator) -> tuple[Catalogue,
                                                                                  np.ndarray]:
    """Items with latent factors; returns the catalogue and the [categories, subcats, dim]
    centres (for drawing users)."""
    centres = rng.normal(size=(cfg.n_categories, cfg.dim))
    subs = centres[:, None, :] + cfg.subcategory_scale * rng.normal(
        size=(cfg.n_categories, cfg.n_subcategories, cfg.dim))
    cats = rng.integers(0, cfg.n_categories, cfg.n_items)
    subcats = rng.integers(0, cfg.n_subcategories, cfg.n_items)
    emb = subs[cats, subcats] + cfg.noise_scale * rng.normal(size=(cfg.n_items, cfg.dim))
    ids = [f"item{i}" for i in range(cfg.n_items)]
    titles = {ids[i]: f"item {i}" for i in range(cfg.n_items)}
    categories = {ids[i]: f"cat{cats[i]}.{subcats[i]}" for i in range(cfg.n_items)}
    return Catalogue(ids, emb, titles, categories), subs


def synthetic_sequences(cfg: SyntheticConfig, catalogue: Catalogue, subs: np.ndarray,
                        n_users: int, length: int, rng: np.random.Generator,
                        first_user: int = 0) -> list[Sequence]:
    """``n_users`` sequences of ``length`` distinct items each (see the module docstring)."""
    emb = catalogue.embeddings
    out = []
    for n in range(n_users):
        k, j = rng.integers(0, subs.shape[0]), rng.integers(0, subs.shape[1])
        taste = subs[k, j] + cfg.user_noise * rng.normal(size=emb.shape[1])
        base = emb @ taste
        items: list[int] = []
        for _ in range(length):
            score = base + (cfg.recency * emb @ emb[items[-1]] if items else 0.0)
            logits = score / cfg.temperature
            logits[items] = -np.inf
            p = np.exp(logits - logits.max())
            items.append(int(rng.choice(len(p), p=p / p.sum())))
        out.append(Sequence(f"user{first_user + n}", [catalogue.item_ids[i] for i in items],
                            taste))
    return out


def next_item_scores(cfg: SyntheticConfig, catalogue: Catalogue, example: Example) -> np.ndarray:
    """The generator's own score of every item as the next one (the teacher's privileged view)."""
    emb = catalogue.embeddings
    last = emb[catalogue.index[example.history[-1]]]
    return emb @ example.taste + cfg.recency * emb @ last


# -- interaction files ------------------------------------------------------------------------
USER_KEYS = ("user", "user_id", "reviewerID", "userId", "reviewer_id")
ITEM_KEYS = ("item", "item_id", "parent_asin", "asin", "itemId", "productId")
TIME_KEYS = ("timestamp", "unixReviewTime", "time", "unix_time")
TITLE_KEYS = ("title", "name")
CATEGORY_KEYS = ("category", "main_category", "categories")


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return path.open(encoding="utf-8")


def _rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(location, row)`` of a JSON-lines / JSON-array / CSV / Parquet file (``.gz`` allowed)."""
    if not path.is_file():
        raise DataError(f"{path}: interaction file not found")
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes:
        from rlhf.data.readers import iter_rows

        yield from iter_rows(path)
        return
    if ".csv" in suffixes:
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            header: list[str] | None = None
            for n, values in enumerate(reader, start=1):
                if not values:
                    continue
                if header is None:
                    if any(v in USER_KEYS + ITEM_KEYS + TIME_KEYS for v in values):
                        header = values
                        continue
                    # ratings-only Amazon CSV: user,item,rating,timestamp
                    header = ["user", "item", "rating", "timestamp"][:len(values)]
                yield f"{path}:{n}", dict(zip(header, values, strict=False))
        return
    with _open_text(path) as fh:
        text = fh.read()
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise DataError(f"{path}: not a JSON array: {exc}") from None
        for n, row in enumerate(rows, start=1):
            yield f"{path}:row {n}", row
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{path}:{n}: not a JSON object: {exc}") from None
        yield f"{path}:{n}", row


def _pick(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if row.get(k) not in (None, ""):
            return row[k]
    return None


def _category(value: Any) -> str | None:
    """A category from a string or Amazon's (nested) category lists: the most specific one."""
    while isinstance(value, list) and value:
        value = value[0] if isinstance(value[0], list) else value[-1]
    return str(value) if value not in (None, "", []) else None


def _timestamp(value: Any, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    try:
        import datetime as dt

        return dt.datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        raise DataError(f"{where}: timestamp: {value!r} is neither a number nor an ISO date"
                        ) from None


def load_interactions(path: str | Path, metadata: str | Path | None = None,
                      min_length: int = 2) -> tuple[list[Sequence], dict[str, str],
                                                    dict[str, str]]:
    """Per-user item sequences (time order; ties keep file order) from an interaction file.

    Returns ``(sequences, titles, categories)``; users with fewer than ``min_length`` distinct
    items are dropped (a repeated item keeps its first occurrence). A row without a user, an
    item or a timestamp raises :class:`DataError` naming the file and line."""
    events: dict[str, list[tuple[float, int, str]]] = {}
    titles: dict[str, str] = {}
    categories: dict[str, str] = {}
    order = 0
    for where, row in _rows(Path(path).expanduser()):
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected an object, got {type(row).__name__}")
        user, item, ts = _pick(row, USER_KEYS), _pick(row, ITEM_KEYS), _pick(row, TIME_KEYS)
        for name, value, keys in (("user", user, USER_KEYS), ("item", item, ITEM_KEYS),
                                  ("timestamp", ts, TIME_KEYS)):
            if value is None:
                raise DataError(f"{where}: {name}: missing (one of {', '.join(keys)})")
        item = str(item)
        events.setdefault(str(user), []).append((_timestamp(ts, where), order, item))
        order += 1
        title, cat = _pick(row, TITLE_KEYS), _category(_pick(row, CATEGORY_KEYS))
        if title is not None:
            titles.setdefault(item, str(title))
        if cat is not None:
            categories.setdefault(item, cat)
    if metadata is not None:
        for where, row in _rows(Path(metadata).expanduser()):
            item = _pick(row, ITEM_KEYS)
            if item is None:
                raise DataError(f"{where}: item: missing (one of {', '.join(ITEM_KEYS)})")
            title, cat = _pick(row, TITLE_KEYS), _category(_pick(row, CATEGORY_KEYS))
            if title is not None:
                titles[str(item)] = str(title)
            if cat is not None:
                categories[str(item)] = cat
    sequences = []
    for user, evs in events.items():
        seen: list[str] = []
        for _, _, item in sorted(evs):
            if item not in seen:
                seen.append(item)
        if len(seen) >= min_length:
            sequences.append(Sequence(user, seen))
    if not sequences:
        raise DataError(f"{path}: no user has {min_length} or more distinct items")
    return sequences, titles, categories


def svd_item_embeddings(sequences: list[Sequence], dim: int = 16, seed: int = 0
                        ) -> tuple[list[str], np.ndarray]:
    """Item embeddings from a truncated SVD of the (binary, row-normalised) user-item matrix."""
    from scipy.sparse import csr_matrix
    from sklearn.decomposition import TruncatedSVD

    item_ids = sorted({i for s in sequences for i in s.items})
    index = {item: n for n, item in enumerate(item_ids)}
    rows, cols = [], []
    for u, s in enumerate(sequences):
        for item in s.items:
            rows.append(u)
            cols.append(index[item])
    values = np.ones(len(rows))
    matrix = csr_matrix((values, (rows, cols)), shape=(len(sequences), len(item_ids)))
    k = max(1, min(dim, min(matrix.shape) - 1))
    svd = TruncatedSVD(n_components=k, random_state=seed)
    svd.fit(matrix)
    emb = (svd.components_ * svd.singular_values_[:, None]).T  # [items, k]
    if k < dim:
        emb = np.pad(emb, ((0, 0), (0, dim - k)))
    return item_ids, emb


# -- examples, pre-ranker, teacher -----------------------------------------------------------------
@dataclass
class PrerankConfig:
    n_candidates: int = 10
    """K."""
    hit_rate: float = 0.9
    """Share of examples whose candidates include the true next item."""
    n_hard: int = 4
    """Candidates taken from the pre-ranker's best-scored items (hard negatives)."""
    noise: float = 1.0
    """Noise of the pre-rank order, in units of the candidates' score spread."""


def history_scores(catalogue: Catalogue, history: list[str]) -> np.ndarray:
    """The pre-ranker's score of every item: dot product with the history's mean embedding."""
    emb = catalogue.embeddings
    mean = emb[[catalogue.index[i] for i in history]].mean(axis=0)
    return emb @ mean


def prerank(catalogue: Catalogue, history: list[str], target: str, cfg: PrerankConfig,
            rng: np.random.Generator) -> list[str]:
    """K candidates in pre-rank order (see the module docstring)."""
    k = cfg.n_candidates
    scores = history_scores(catalogue, history)
    banned = {catalogue.index[i] for i in history} | {catalogue.index[target]}
    include = rng.random() < cfg.hit_rate
    chosen = [catalogue.index[target]] if include else []
    n_hard = min(cfg.n_hard, k - len(chosen))
    chosen += [int(i) for i in np.argsort(-scores, kind="stable")
               if int(i) not in banned][:n_hard]
    pool = [i for i in range(len(catalogue.item_ids)) if i not in banned and i not in chosen]
    if len(pool) < k - len(chosen):
        raise DataError(f"the catalogue has too few items ({len(catalogue.item_ids)}) for "
                        f"{k} candidates")
    chosen += [int(i) for i in rng.choice(pool, size=k - len(chosen), replace=False)]
    picked = scores[chosen]
    spread = float(picked.std()) or 1.0
    noisy = picked + cfg.noise * spread * rng.normal(size=len(chosen))
    order = np.argsort(-noisy, kind="stable")
    return [catalogue.item_ids[chosen[i]] for i in order]


def make_examples(catalogue: Catalogue, sequences: list[Sequence], history_len: int,
                  cfg: PrerankConfig, rng: np.random.Generator, windows: int = 1) -> list[Example]:
    """Examples from the last ``windows`` positions of each sequence (leave-last-out): the
    ``history_len`` items before a position are the history, the item at it the target."""
    out = []
    for s in sequences:
        ends = range(len(s.items) - 1, max(history_len, len(s.items) - windows) - 1, -1)
        for end in ends:
            if end < 1:
                continue
            history = s.items[max(0, end - history_len):end]
            target = s.items[end]
            out.append(Example(s.user, history, prerank(catalogue, history, target, cfg, rng),
                               target, s.taste))
    return out


@dataclass
class TeacherConfig:
    noise: float = 0.5
    """Noise added to the teacher's scores, in units of their spread over the candidates."""
    max_tries: int = 4
    """Traces sampled per example; the first whose top item is the target is kept."""


def teacher_scores(example: Example, catalogue: Catalogue,
                   synthetic: SyntheticConfig | None) -> np.ndarray:
    """The teacher's privileged score of each candidate (before noise)."""
    if synthetic is not None and example.taste is not None:
        scores = next_item_scores(synthetic, catalogue, example)
    else:
        scores = history_scores(catalogue, example.history)
    return np.array([scores[catalogue.index[c]] for c in example.candidates])


def teacher_trace(example: Example, catalogue: Catalogue, synthetic: SyntheticConfig | None,
                  cfg: TeacherConfig, rng: np.random.Generator) -> tuple[str | None, int]:
    """Rejection sampling: up to ``max_tries`` noisy teacher picks; returns the first pick that
    equals the target (``None`` if none did) and how many tries were used."""
    scores = teacher_scores(example, catalogue, synthetic)
    spread = float(scores.std()) or 1.0
    for attempt in range(1, cfg.max_tries + 1):
        noisy = scores + cfg.noise * spread * rng.normal(size=len(scores))
        pick = example.candidates[int(np.argmax(noisy))]
        if pick == example.target:
            return pick, attempt
    return None, cfg.max_tries


def promote(candidates: list[str], item: str) -> list[str]:
    """``item`` first, the other candidates after it in their pre-rank order."""
    return [item] + [c for c in candidates if c != item]

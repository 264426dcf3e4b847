"""Prompt sampling with a resumable position: a seeded permutation per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def resolve_audio_paths(rows: list[dict[str, Any]], data_file: Path, column: str = "audio"
                        ) -> list[dict[str, Any]]:
    """``rows`` with a relative path in ``column`` made relative to ``data_file``'s folder
    (audio prompts of ASR policies; absolute paths and other values are kept)."""
    from rewards.score_file import resolve_audio

    base = Path(data_file).parent
    return [{**r, column: resolve_audio(r[column], base)} if isinstance(r.get(column), str) else r
            for r in rows]


class PromptSampler:
    """Yields prompt rows in a seeded random order, epoch after epoch; its state is a position."""

    def __init__(self, rows: list[dict[str, Any]], seed: int) -> None:
        if not rows:
            raise ValueError("no prompts")
        self.rows, self.seed = rows, seed
        self.epoch, self.index = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(len(self.rows), generator=gen).tolist()

    def next(self, n: int) -> list[dict[str, Any]]:
        out = []
        while len(out) < n:
            if self.index >= len(self._order):
                self.epoch, self.index = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
            out.append(self.rows[self._order[self.index]])
            self.index += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.index = int(state["epoch"]), int(state["index"])
        self._order = self._permutation(self.epoch)

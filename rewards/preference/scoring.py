"""Score texts with a trained sequence-classification reward model, in batches.

The text a pair is scored on is the text TRL's ``RewardTrainer`` trained on: ``prompt +
completion`` with the tokenizer's EOS token appended (plain text), or the chat template applied
to the messages (conversational form). The reward is read at the last non-pad token, so scoring
without the EOS would read it one token early.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _join(prompt: Any, completion: Any, tokenizer: Any) -> str:
    """One text per (prompt, completion): concatenation + EOS, or the chat template for messages."""
    if isinstance(completion, list):
        messages = (list(prompt) if isinstance(prompt, list) else []) + list(completion)
        return tokenizer.apply_chat_template(messages, tokenize=False)
    text = f"{prompt or ''}{completion}"
    eos = getattr(tokenizer, "eos_token", None)
    return text if not eos or text.endswith(eos) else text + eos


def score_texts(model: Any, tokenizer: Any, prompts: Sequence[Any], completions: Sequence[Any],
                batch_size: int = 32, max_length: int = 512) -> list[float]:
    """Scalar reward per (prompt, completion) pair: the model's logit, shape [N] as a list.

    ``max_length`` (tokens) truncates each text; ``batch_size`` texts go through one forward.
    """
    import torch

    texts = [_join(p, c, tokenizer) for p, c in zip(prompts, completions, strict=True)]
    scores: list[float] = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                            truncation=True, max_length=max_length)
            enc = {k: v.to(model.device) for k, v in enc.items()}
            logits = model(**enc).logits
            scores.extend(logits[:, 0].float().tolist())
    model.train(was_training)
    return scores


def pairwise_accuracy(chosen_scores: Sequence[float], rejected_scores: Sequence[float]) -> dict:
    """Accuracy (chosen scored strictly higher; ties count half) and mean reward gap."""
    n = len(chosen_scores)
    wins = sum(1.0 if c > r else 0.5 if c == r else 0.0
               for c, r in zip(chosen_scores, rejected_scores, strict=True))
    gap = sum(c - r for c, r in zip(chosen_scores, rejected_scores, strict=True))
    return {"accuracy": wins / n if n else float("nan"), "reward_gap": gap / n if n else 0.0}

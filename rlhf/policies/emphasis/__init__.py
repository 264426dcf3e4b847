"""HiLight emphasis (arXiv 2604.22565): an Emphasis Actor marks pivotal units of an unaltered
context, a frozen Solver answers on the emphasised input, and the Solver's task metric is the
actor's reward (``emphasis.solver``).

- :mod:`~rlhf.policies.emphasis.spans`: units, tags, budget, the byte-exact round trip;
- :mod:`~rlhf.policies.emphasis.actor`: the actor's prompt and strictly parsed index output;
- :mod:`~rlhf.policies.emphasis.solvers`: scripted, callable, Hugging Face and OpenAI-compatible
  solvers;
- :mod:`~rlhf.policies.emphasis.data`: synthetic distractor QA, SQuAD-2.0 and HotpotQA loaders;
- stages ``emphasis_data`` (:mod:`~rlhf.policies.emphasis.data_stage`) and ``emphasis_eval``
  (:mod:`~rlhf.policies.emphasis.eval_stage`); the actor itself trains with the ``grpo`` stage.
"""

from rlhf.policies.emphasis.actor import (
    IndexParseError, actor_prompt, format_indices, parse_indices, random_selection,
)
from rlhf.policies.emphasis.spans import (
    END_TAG, START_TAG, ContextAlteredError, Emphasis, TagInContextError, Unit, emphasize,
    insert_tags, marked_fraction, parse_tagged, segment, strip_tags, validate_tagged,
)

__all__ = [
    "END_TAG", "START_TAG", "ContextAlteredError", "Emphasis", "IndexParseError",
    "TagInContextError", "Unit", "actor_prompt", "emphasize", "format_indices", "insert_tags",
    "marked_fraction", "parse_indices", "parse_tagged", "random_selection", "segment",
    "strip_tags", "validate_tagged",
]

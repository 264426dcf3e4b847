"""Generative reward models (LLM judges): templates, verdicts, position swap, rubric, training.

- :mod:`~rewards.generative.templates`: judge prompt templates (text files with placeholders);
- :mod:`~rewards.generative.verdict`: strict verdict parsing and the monotone verdict → reward map;
- :mod:`~rewards.generative.judge`: model and callable judges, judging in both answer orders;
- :mod:`~rewards.generative.reward`: the ``judge.generative`` reward;
- :mod:`~rewards.generative.data`: judgment records (synthetic, files) and SFT examples;
- :mod:`~rewards.generative.trainer`: the ``judge`` stage (SFT with TRL, held-out accuracy).

Importing this package is light: torch, transformers and trl load on first use.
"""

from rewards.generative.templates import JudgeTemplate, load_template
from rewards.generative.verdict import Verdict, VerdictMap, build_mapping, parse_verdict

__all__ = ["JudgeTemplate", "Verdict", "VerdictMap", "build_mapping", "load_template",
           "parse_verdict"]

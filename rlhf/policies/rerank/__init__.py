"""GR2 generative reranker (arXiv 2602.07774): semantic IDs, data, prompts, metrics, stages.

- :mod:`.semantic_ids`: residual quantiser, unique codes, SID tokens in the tokenizer.
- :mod:`.data`: synthetic sequential recommendation, Amazon-reviews-form loader, pre-ranker,
  scripted teacher with rejection sampling.
- :mod:`.prompts`: prompt and JSON answer (scored by ``rerank.conditional`` / ``rerank.plain``).
- :mod:`.metrics`: Recall@k, NDCG@k, order-copy rate.
- :mod:`.stages`: the ``rerank_data`` and ``rerank_eval`` stage kinds.

Training uses the generic ``sft`` and ``dapo``/``grpo`` stages (``rlhf.policies.text``).
"""

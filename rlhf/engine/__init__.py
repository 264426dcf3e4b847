"""On-policy RL engine: pure tensor functions first, the loop on top of them.

The modules here that hold formulas are pure functions (or tiny stateful controllers) over
tensors, importable and tested on their own, with no knowledge of models or modality:

- :mod:`rlhf.engine.advantages`: GAE (PPO), group-normalised advantages (GRPO / DAPO /
  Dr.GRPO) and the RLOO leave-one-out baseline.
- :mod:`rlhf.engine.losses`: clipped policy loss with clip-higher and three loss aggregations
  (DAPO token mean, GRPO sequence mean, Dr.GRPO constant normaliser), per-token KL penalties
  (k1 / k2 / k3), the PPO clipped value loss, and masked mean / whitening helpers.
- :mod:`rlhf.engine.kl_control`: fixed and adaptive KL coefficients (Ziegler et al. 2019).
- :mod:`rlhf.engine.dynamic_sampling`: DAPO dynamic sampling (drop zero-variance groups, refill
  the batch over a bounded number of generation rounds).

Conventions: tensors are ``[batch, time]`` with a 0/1 float mask over completion tokens unless a
docstring says otherwise; log-probabilities are natural logs (nats). Importing this package
imports nothing; import the submodule you need.
"""

"""Algorithms as stage kinds: offline trainers over TRL (sft, dpo) and, later, the RL engine's."""

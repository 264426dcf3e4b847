"""Policy adapters: what the RL engine generates with and trains (text here; audio, reranking and
emphasis adapters live in their own sub-packages). The engine knows nothing of modality."""

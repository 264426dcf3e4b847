"""Bradley–Terry preference reward models: training (stage ``reward_model``) and scoring."""

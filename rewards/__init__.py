"""Reward functions, reward models and their registry."""

"""Verifiable rewards: scored against ground truth or a checkable format."""

"""Annotation loop: push samples to annotators, pull preferences back."""

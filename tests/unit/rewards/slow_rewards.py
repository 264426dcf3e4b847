"""Module-level reward functions for the runner tests (importable by spawned workers)."""

import asyncio
import os
import time


def slow_len(prompts, completions, delay=0.2, **columns):
    time.sleep(delay * len(completions))
    return [float(len(c)) for c in completions]


def pid_reward(prompts, completions, **columns):
    return [float(os.getpid()) for _ in completions]


def sleepy(prompts, completions, **columns):
    time.sleep(30)
    return [1.0 for _ in completions]


async def async_len(prompts, completions, delay=0.3, **columns):
    await asyncio.sleep(delay)
    return [float(len(c)) for c in completions]


def flaky(prompts, completions, **columns):
    return [None if c == "skip" else 1.0 for c in completions]

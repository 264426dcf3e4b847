"""``rlhf run`` on several processes: check the machine, pick the run directory, start the workers.

With ``distributed.num_processes`` (or ``--num-processes``) above 1, the ``rlhf run`` that the
user started is only the launcher: it validates the recipe, resolves the run directory (so every
rank writes to the same one) and starts ``num_processes`` copies of ``rlhf run ... --run-dir DIR``
with torch's elastic launcher, exactly as ``torchrun --standalone --nproc-per-node N -m
rlhf.cli.app run ...`` would (gloo on CPU, NCCL on GPUs; see :mod:`rlhf.engine.distributed`).
The workers inherit its stdout and stderr, so their output streams through; they see
``WORLD_SIZE`` in their environment and never launch again. The launcher exits with the exit code
of the first worker that failed, so a user error (2) stays 2.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from rlhf.errors import UserError


def is_worker() -> bool:
    """True inside a launched job (any launcher: ours, torchrun, accelerate)."""
    return "WORLD_SIZE" in os.environ


def needs_launch(recipe: Any) -> bool:
    """The recipe asks for several processes and this process is not one of them yet."""
    return recipe.distributed.num_processes > 1 and not is_worker()


def check_machine(recipe: Any) -> None:
    """What the ``distributed:`` block needs from this machine, checked before any compute."""
    import torch

    config = recipe.distributed
    cuda = torch.cuda.is_available()
    if config.deepspeed and not cuda:
        raise UserError("DeepSpeed ZeRO needs a GPU; run with deepspeed: null on CPU "
                        f"(distributed.deepspeed is {config.deepspeed!r} and CUDA is not "
                        "available)")
    if config.mixed_precision == "fp16" and not cuda:
        raise UserError("mixed_precision: fp16 needs a GPU; use bf16 or no on CPU")
    gpus = torch.cuda.device_count() if cuda else 0
    if gpus and config.num_processes > gpus and not is_worker():
        raise UserError(f"distributed.num_processes is {config.num_processes} but this machine "
                        f"has {gpus} GPU(s): run one process per GPU")


def worker_args(recipe: str, overrides: list[str], run_dir: Path, resume: bool, debug: bool,
                tags: list[str] | None = None, run_name: str | None = None) -> list[str]:
    """The ``rlhf`` command line of every worker: the same run, on a fixed run directory
    (``tags``: ``KEY=VALUE`` strings passed on as ``--tag``)."""
    where = ["--resume", str(run_dir)] if resume else ["--run-dir", str(run_dir)]
    extra = [a for t in tags or [] for a in ("--tag", t)]
    extra += ["--run-name", run_name] if run_name else []
    return [*(["--debug"] if debug else []), "run", recipe, *overrides, *where, *extra]


def launch(num_processes: int, args: list[str]) -> int:
    """Run ``python -m rlhf.cli.app ARGS`` on ``num_processes`` local ranks; return the exit
    code: 0, or that of the first worker that failed (128 + N for a worker killed by signal N)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if "OMP_NUM_THREADS" not in os.environ:  # share the cores instead of oversubscribing them
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // num_processes))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)
    parsed = parse_args(["--standalone", f"--nproc-per-node={num_processes}",
                         "--max-restarts=0", "--module", "rlhf.cli.app", *args])
    try:
        run(parsed)
    except ChildFailedError as exc:
        _, failure = exc.get_first_failure()
        code = failure.exitcode
        return 128 - code if code < 0 else code
    return 0

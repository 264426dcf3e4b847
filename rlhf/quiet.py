"""Keep library chatter (progress bars of every map, deprecation warnings) off the user's screen.

Called once by the CLI before any compute; ``--debug`` leaves everything on.
"""

from __future__ import annotations

import logging
import os
import warnings


def quiet_libraries() -> None:
    """Silence third-party progress bars, info logs and FutureWarnings; keep errors."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    import torch

    if not torch.cuda.is_available():  # DeepSpeed otherwise warns that it fell back to the CPU
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")
    for name in ("DeepSpeed", "deepspeed", "alembic", "mlflow", "datasets", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import datasets
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        datasets.disable_progress_bars()
        datasets.utils.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - both are dependencies
        pass

"""Run one side of a benchmark in a fresh interpreter and read back its JSON result.

Each side (ours, the baseline) runs in its own process so that imports, caches and peak memory
of one never colour the other; sides run one after the other (the machine may have 2 cores).
The child is ``python -m <module> --child <side> <out.json>`` and writes its result to
``out.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_child(module: str, side: str, threads: int) -> dict[str, Any]:
    """The JSON result of ``module``'s ``side`` run with ``threads`` intra-op threads."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory(prefix="bench-child-") as tmp:
        out = Path(tmp) / f"{side}.json"
        proc = subprocess.run([sys.executable, "-m", module, "--child", side, str(out)],
                              cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not out.exists():
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise RuntimeError(f"{module}: the {side!r} child failed (exit {proc.returncode})")
        return json.loads(out.read_text(encoding="utf-8"))

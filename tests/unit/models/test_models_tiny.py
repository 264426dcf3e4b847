"""Tiny presets: bit-identical builds, cache reuse and invalidation, concurrent builders."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from rlhf.errors import UserError
from rlhf.models import tiny


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.mark.parametrize("name", sorted(tiny.PRESETS))
def test_two_builds_in_different_caches_are_bit_identical(name, tmp_path, monkeypatch):
    monkeypatch.setenv("RLHF_CACHE_DIR", str(tmp_path / "a"))
    first = tiny.preset_path(name)
    monkeypatch.setenv("RLHF_CACHE_DIR", str(tmp_path / "b"))
    second = tiny.preset_path("tiny:" + name)
    assert first != second and first.name == second.name
    a, b = _files(first), _files(second)
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= set(a)
    assert a.keys() == b.keys()
    for fname in a:
        assert a[fname] == b[fname], fname


def test_cache_layout_and_reuse(tmp_path, monkeypatch):
    monkeypatch.setenv("RLHF_CACHE_DIR", str(tmp_path))
    path = tiny.preset_path("lm")
    assert path.parent == tmp_path / "tiny"
    assert path.name == f"lm-{tiny.preset_hash('lm')}"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # temp dir renamed
    stamp = (path / "model.safetensors").stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("preset rebuilt although it is cached")

    monkeypatch.setattr(tiny, "build_preset", fail)
    assert tiny.preset_path("tiny:lm") == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp


def test_hash_covers_config_corpus_and_format(monkeypatch):
    base = tiny.preset_hash("lm")
    assert tiny.preset_hash("reward") != base
    monkeypatch.setitem(tiny.PRESET_CONFIGS["lm"], "seed", 99)
    assert tiny.preset_hash("lm") != base
    monkeypatch.undo()
    monkeypatch.setattr("rlhf.models.tokenizer.corpus_bytes", lambda: b"another corpus")
    assert tiny.preset_hash("lm") != base
    monkeypatch.undo()
    monkeypatch.setattr(tiny, "FORMAT_VERSION", tiny.FORMAT_VERSION + 1)
    assert tiny.preset_hash("lm") != base
    monkeypatch.undo()
    assert tiny.preset_hash("lm") == base


def test_concurrent_callers_build_once(tmp_path, monkeypatch):
    monkeypatch.setenv("RLHF_CACHE_DIR", str(tmp_path))
    calls = []
    real = tiny.build_preset

    def counting(name, out_dir):
        calls.append(name)
        return real(name, out_dir)

    monkeypatch.setattr(tiny, "build_preset", counting)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(tiny.preset_path("reward"))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len(set(results)) == 1
    assert calls == ["reward"]
    assert (results[0] / "model.safetensors").is_file()


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("RLHF_CACHE_DIR", str(tmp_path))

    def broken(name, out_dir):
        (Path(out_dir) / "partial.bin").write_bytes(b"x")
        raise RuntimeError("boom")

    monkeypatch.setattr(tiny, "build_preset", broken)
    with pytest.raises(RuntimeError, match="boom"):
        tiny.preset_path("lm")
    assert [p.name for p in (tmp_path / "tiny").iterdir() if not p.name.endswith(".lock")] == []


def test_unknown_preset_suggests_the_nearest():
    with pytest.raises(UserError, match="did you mean 'tiny:lm'"):
        tiny.preset_path("tiny:lmm")
    assert tiny.preset_specs()[:2] == ["tiny:lm", "tiny:reward"]
    assert "tiny:lm-base" in tiny.preset_specs()
    assert all(isinstance(desc, str) and desc for _, desc in tiny.PRESETS.values())


def test_build_leaves_the_global_rng_alone(tmp_path):
    import torch

    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    tiny.build_preset("lm", tmp_path)
    assert torch.equal(torch.rand(3), expected)

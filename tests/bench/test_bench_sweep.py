"""The sweep grammar, presets and case expansion."""
from __future__ import annotations

import pytest

from ratbench.bench.presets import preset
from ratbench.bench.sweep import (
    Case,
    SweepError,
    SweepSpec,
    expand,
    format_size,
    parse_bools,
    parse_dtype,
    parse_modes,
    parse_size,
    parse_sizes,
    resolve_impls,
)


@pytest.mark.parametrize("text,value", [("4096", 4096), ("4k", 4096), ("4K", 4096), ("128k", 131072),
                                        ("1m", 1048576), ("0.5k", 512), (" 16 ", 16), (7, 7)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "k", "4g", "-4", "0", "4.3k", "1e3", "four"])
def test_parse_size_rejects(text):
    with pytest.raises(SweepError):
        parse_size(text)


def test_parse_sizes_lists_and_ranges():
    assert parse_sizes("4k,16k,128k") == [4096, 16384, 131072]
    assert parse_sizes("4k..32k") == [4096, 8192, 16384, 32768]
    assert parse_sizes("1..5") == [1, 2, 4]
    assert parse_sizes("16,16,8") == [16, 8]  # duplicates dropped, order kept
    assert parse_sizes("1,4k..8k") == [1, 4096, 8192]
    with pytest.raises(SweepError, match="backwards"):
        parse_sizes("8k..4k")
    with pytest.raises(SweepError):
        parse_sizes(",")


def test_parse_modes_dtypes_bools():
    assert parse_modes("train,decode") == ["train", "decode"]
    with pytest.raises(SweepError, match="unknown mode"):
        parse_modes("train,fwd")
    assert parse_dtype("bf16") == "bfloat16" and parse_dtype("torch.float16") == "float16"
    with pytest.raises(SweepError, match="dtype"):
        parse_dtype("int8")
    assert parse_bools("no,yes") == [False, True]
    with pytest.raises(SweepError):
        parse_bools("maybe")
    assert format_size(131072) == "128k" and format_size(1000) == "1000" and format_size(1 << 20) == "1m"


def test_case_key_is_stable_and_hashable():
    c = Case(impl="rat/reference", mode="train", batch=32, seq_len=4096, heads=16, head_dim=128, dtype="bfloat16",
             device="cuda", chunk_size=16)
    # the key is part of the results-file format (resume, compare, sharding): it must not drift
    assert c.key == "rat/reference|train|op|B32|T4096|H16|D128|L16|W-|decay-|bfloat16|cuda"
    assert c.family == "rat" and c.params == {"chunk_size": 16}
    assert {c: 1}[Case.from_dict(c.to_dict())] == 1
    assert Case.from_dict({**c.to_dict(), "status": "ok"}) == c  # extra row columns are ignored


def test_expand_family_parameters_and_batches():
    spec = SweepSpec(impls=["*/reference"], modes=["train", "decode"], seq_lens=[256, 1024], chunk_sizes=[16, 64],
                     windows=[128], decays=[False, True], heads=[2], head_dims=[32], tokens=2048,
                     decode_batches=[1, 8], device="cpu")
    cases = expand(spec)
    assert len({c.key for c in cases}) == len(cases)
    by = {}
    for c in cases:
        by.setdefault((c.family, c.mode), []).append(c)
    # train: B = tokens // T; rat: one series per chunk size; linear: per decay; decode: the decode batches
    assert {(c.seq_len, c.batch) for c in by["full", "train"]} == {(256, 8), (1024, 2)}
    assert {c.chunk_size for c in by["rat", "train"]} == {16, 64} and len(by["rat", "train"]) == 4
    assert {c.decay for c in by["linear", "train"]} == {False, True}
    assert all(c.window == 128 and c.chunk_size is None for c in by["swa", "train"])
    assert {c.batch for c in by["full", "decode"]} == {1, 8} and len(by["full", "decode"]) == 4
    assert all(c.chunk_size is None and c.window is None and c.decay is None for c in by["full", "train"])
    # shorter sequences first (a slow series skips its longer cases; a time-limited run covers every impl)
    assert [c.seq_len for c in cases] == sorted(c.seq_len for c in cases)
    rat = [c for c in cases if c.family == "rat" and c.mode == "train"]
    assert [(c.chunk_size, c.seq_len) for c in rat] == [(16, 256), (64, 256), (16, 1024), (64, 1024)]
    assert [c.mode for c in cases if c.seq_len == 256 and c.impl == "full/reference"] == ["train", "decode", "decode"]


def test_expand_explicit_batches_win_over_tokens():
    spec = SweepSpec(impls=["full/reference"], modes=["prefill"], seq_lens=[128], batches=[1, 3], tokens=None)
    assert [c.batch for c in expand(spec)] == [1, 3]
    spec = SweepSpec(impls=["full/reference"], modes=["prefill"], seq_lens=[4096], batches=None, tokens=1024)
    assert [c.batch for c in expand(spec)] == [1]  # never below one sequence


def test_resolve_impls_globs_and_references():
    refs = resolve_impls(["*/reference"])
    assert set(refs) == {"full/reference", "swa/reference", "linear/reference", "rat/reference"}
    assert "full/reference" not in resolve_impls(["full/*"], skip_references=True)
    assert resolve_impls(["full/reference"], skip_references=True) == ["full/reference"]  # explicit name kept
    with pytest.raises(ValueError, match="no implementation matches"):
        resolve_impls(["nope/*"])


def test_presets():
    paper = preset("paper", "cuda")
    assert paper.seq_lens == [4096 * 2**i for i in range(6)] and paper.tokens == 262144
    assert paper.decode_batches == [512] and paper.chunk_sizes == [16] and paper.dtype == "bfloat16"
    assert paper.batch_for("train", 131072) == [2] and paper.batch_for("decode", 4096) == [512]
    for name in ("smoke", "default", "paper"):
        cpu = preset(name, "cpu")
        assert cpu.device == "cpu" and cpu.dtype == "float32" and max(cpu.seq_lens) <= 2048
    with pytest.raises(SweepError, match="unknown preset"):
        preset("huge", "cpu")

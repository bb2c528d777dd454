"""Bad input gets a clear error naming the problem."""
from __future__ import annotations

import pytest
import torch

from ratbench import impls

x = torch.randn(1, 8, 2, 4)


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match="unknown implementation 'rat/nope'.*rat/reference"):
        impls.get("rat/nope")
    with pytest.raises(impls.UnknownImplementationError, match="no implementation matches"):
        impls.match("zzz/*")


def test_match_globs():
    assert "rat/reference" in impls.match("rat/*")
    assert impls.match("full/reference,rat/reference") == ["full/reference", "rat/reference"]


def test_available_lists_everything_with_reasons():
    rows = impls.available("cpu")
    assert {r.name for r in rows} == set(impls.names())
    for r in rows:
        assert r.available == (r.reason is None)
    assert all(r.available for r in rows if r.name.endswith("/reference"))
    cuda_rows = {r.name: r for r in impls.available("cuda")}
    if not torch.cuda.is_available():
        assert not cuda_rows["rat/reference"].available
        assert "CUDA" in cuda_rows["rat/reference"].reason


def test_register_rejects_bad_names():
    with pytest.raises(ValueError, match="family"):
        impls.register("nofamily", "x:y")
    with pytest.raises(ValueError, match="twice"):
        impls.register("rat/reference", "ratbench.impls.rat.reference:RATReference")


@pytest.mark.parametrize("bad,exc,msg", [
    (torch.randn(8, 2, 4), ValueError, "layout"),
    ([[1.0]], TypeError, "torch.Tensor"),
    (torch.ones(1, 8, 2, 4, dtype=torch.int64), TypeError, "float16"),
])
def test_bad_tensors(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        impls.get("full/reference").forward(bad, x, x)


def test_mismatched_shapes_dtypes():
    with pytest.raises(ValueError, match="shape"):
        impls.get("full/reference").forward(x, x[:, :4], x)
    with pytest.raises(TypeError, match="dtype"):
        impls.get("swa/reference").forward(x, x.double(), x, window=2)


def test_rat_chunk_errors():
    rat = impls.get("rat/reference")
    f = torch.rand_like(x)
    with pytest.raises(ValueError, match="multiple of chunk_size"):
        rat.forward(x, x, x, f, chunk_size=3)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        rat.forward(x, x, x, f, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size must be an int"):
        rat.forward(x, x, x, f, chunk_size=2.0)
    with pytest.raises(ValueError, match="f has shape"):
        rat.forward(x, x, x, f[:, :4], chunk_size=2)
    with pytest.raises(TypeError, match="f has dtype"):
        rat.forward(x, x, x, f.double(), chunk_size=2)


def test_window_errors():
    with pytest.raises(ValueError, match="window must be >= 1"):
        impls.get("swa/reference").forward(x, x, x, window=0)


def test_decay_errors():
    with pytest.raises(ValueError, match="decay must have shape"):
        impls.get("linear/reference").forward(x, x, x, decay=torch.zeros(1, 8, 3))


def test_step_shape_errors():
    rat = impls.get("rat/reference")
    st = rat.init_state(1, 2, 4, 8, device="cpu", dtype=torch.float32, chunk_size=2)
    with pytest.raises(ValueError, match=r"\(B, H, D\)"):
        rat.step(st, x, x, x, x)


def test_device_mismatch_error():
    with pytest.raises(ValueError, match="k is on meta but q is on cpu"):
        impls.get("full/reference").forward(x, x.to("meta"), x)

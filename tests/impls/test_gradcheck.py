"""torch.autograd.gradcheck in float64 on tiny shapes, for every reference and every input."""
from __future__ import annotations

import pytest
import torch

from ratbench import impls


def _inputs(*shapes, positive=False):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(*s, generator=g, dtype=torch.float64).requires_grad_() for s in shapes]


def test_full():
    q, k, v = _inputs(*[(1, 5, 2, 4)] * 3)
    impl = impls.get("full/reference")
    assert torch.autograd.gradcheck(lambda q, k, v: impl.forward(q, k, v), (q, k, v))


def test_swa():
    q, k, v = _inputs(*[(1, 6, 1, 4)] * 3)
    impl = impls.get("swa/reference")
    assert torch.autograd.gradcheck(lambda q, k, v: impl.forward(q, k, v, window=3), (q, k, v))


@pytest.mark.parametrize("with_decay", [False, True])
def test_linear(with_decay):
    q, k, v = _inputs(*[(1, 5, 2, 3)] * 3)
    d = (-torch.rand(1, 5, 2, dtype=torch.float64)).requires_grad_()
    impl = impls.get("linear/reference")
    if with_decay:
        assert torch.autograd.gradcheck(lambda q, k, v, d: impl.forward(q, k, v, decay=d), (q, k, v, d))
    else:
        assert torch.autograd.gradcheck(lambda q, k, v: impl.forward(q, k, v), (q, k, v))


@pytest.mark.parametrize("L,rope", [(2, True), (3, False), (1, True), (6, True)])
def test_rat(L, rope):
    q, k, v = _inputs(*[(1, 6, 2, 4)] * 3)
    f = torch.sigmoid(torch.randn(1, 6, 2, 4, dtype=torch.float64)).requires_grad_()
    impl = impls.get("rat/reference")
    assert torch.autograd.gradcheck(
        lambda q, k, v, f: impl.forward(q, k, v, f, chunk_size=L, rope=rope), (q, k, v, f)
    )

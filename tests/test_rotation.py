"""Closed-form tests of the two gradient estimators (rotcodec.quantize.rotation)."""

import pytest
import torch

from rotcodec.quantize import rotation_trick, straight_through
from rotcodec.quantize.rotation import rotation_stats


def explicit_rotation(e: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """R (D x D) and lambda for one pair, built in float64 from the definition."""
    e, q = e.double(), q.double()
    e_hat, q_hat = e / e.norm(), q / q.norm()
    r = (e_hat + q_hat) / (e_hat + q_hat).norm()
    eye = torch.eye(e.shape[0], dtype=torch.float64)
    rot = eye - 2 * torch.outer(r, r) + 2 * torch.outer(q_hat, e_hat)
    return rot, q.norm() / e.norm()


def grad_of(fn, e, q, g):
    e = e.clone().requires_grad_(True)
    out = fn(e, q)
    out.backward(g)
    return out.detach(), e.grad


@pytest.mark.parametrize("fn", [rotation_trick, straight_through])
def test_forward_value_is_exactly_q(fn):
    torch.manual_seed(0)
    e = torch.randn(64, 8, requires_grad=True)
    q = torch.randn(64, 8)
    assert torch.equal(fn(e, q), q)
    # also when e is exactly zero (silence / padding frames)
    assert torch.equal(fn(torch.zeros(5, 8, requires_grad=True), q[:5]), q[:5])


def test_explicit_matrix_is_a_rotation_taking_e_onto_q():
    torch.manual_seed(1)
    e, q = torch.randn(8), torch.randn(8)
    rot, lam = explicit_rotation(e, q)
    eye = torch.eye(8, dtype=torch.float64)
    assert torch.allclose(rot.T @ rot, eye, atol=1e-12)
    assert torch.linalg.det(rot).item() == pytest.approx(1.0, abs=1e-10)
    e64, q64 = e.double(), q.double()
    assert torch.allclose(rot @ (e64 / e64.norm()), q64 / q64.norm(), atol=1e-12)
    assert torch.allclose(lam * rot @ e64, q64, atol=1e-12)


@pytest.mark.parametrize("dim", [2, 8, 64])
def test_rotation_gradient_equals_lambda_R_transpose_g(dim):
    torch.manual_seed(dim)
    for _ in range(20):
        e, q, g = torch.randn(dim), torch.randn(dim) * 3, torch.randn(dim)
        _, grad = grad_of(rotation_trick, e, q, g)
        rot, lam = explicit_rotation(e, q)
        expected = lam * rot.T @ g.double()
        rel = (grad.double() - expected).norm() / expected.norm()
        assert rel < 1e-6
        assert grad.norm().item() == pytest.approx((lam * g.double().norm()).item(), rel=1e-6)


def test_rotation_without_rescale_gradient_is_R_transpose_g_with_the_norm_of_g():
    torch.manual_seed(5)
    for _ in range(20):
        e, q, g = torch.randn(8), torch.randn(8) * 3, torch.randn(8)
        out, grad = grad_of(lambda a, b: rotation_trick(a, b, rescale=False), e, q, g)
        assert torch.equal(out, q)
        rot, _ = explicit_rotation(e, q)
        expected = rot.T @ g.double()
        assert (grad.double() - expected).norm() / expected.norm() < 1e-6
        assert grad.norm().item() == pytest.approx(g.norm().item(), rel=1e-5)


def test_rotation_gradient_angle_matches_angle_between_q_and_g():
    torch.manual_seed(3)
    e, q, g = torch.randn(16), torch.randn(16), torch.randn(16)
    _, grad = grad_of(rotation_trick, e, q, g)
    cos = torch.nn.functional.cosine_similarity
    assert cos(e, grad, dim=0).item() == pytest.approx(cos(q, g, dim=0).item(), abs=1e-5)


def test_batched_gradient_matches_per_vector():
    torch.manual_seed(4)
    e, q, g = torch.randn(3, 5, 8), torch.randn(3, 5, 8), torch.randn(3, 5, 8)
    _, grad = grad_of(rotation_trick, e, q, g)
    for i in range(3):
        for j in range(5):
            rot, lam = explicit_rotation(e[i, j], q[i, j])
            assert torch.allclose(grad[i, j].double(), lam * rot.T @ g[i, j].double(), atol=1e-5)


def test_straight_through_gradient_is_identity():
    torch.manual_seed(5)
    e, q, g = torch.randn(10, 8), torch.randn(10, 8), torch.randn(10, 8)
    _, grad = grad_of(straight_through, e, q, g)
    assert torch.equal(grad, g)


def test_rotation_and_ste_give_different_gradients():
    torch.manual_seed(6)
    e, q, g = torch.randn(10, 8), torch.randn(10, 8), torch.randn(10, 8)
    _, g_rot = grad_of(rotation_trick, e, q, g)
    _, g_ste = grad_of(straight_through, e, q, g)
    assert (g_rot - g_ste).norm() > 0.1 * g_ste.norm()


def test_codebook_gets_no_gradient_through_the_estimator():
    e = torch.randn(4, 8, requires_grad=True)
    q = torch.randn(4, 8, requires_grad=True)
    rotation_trick(e, q).sum().backward()
    assert q.grad is None and e.grad is not None


def test_bf16_autocast_keeps_forward_value_within_1e3_of_q():
    torch.manual_seed(7)
    e = (torch.randn(256, 8) * 5).requires_grad_(True)
    q = torch.randn(256, 8) * 5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = rotation_trick(e @ torch.eye(8), q)  # the matmul makes e bf16 under autocast
    rel = ((out.float() - q).norm(dim=-1) / q.norm(dim=-1)).max()
    assert rel < 1e-3
    out.float().sum().backward()
    assert torch.isfinite(e.grad).all()


def test_bf16_inputs_return_q_rounded_once():
    torch.manual_seed(8)
    e = torch.randn(32, 8, dtype=torch.bfloat16, requires_grad=True)
    q = torch.randn(32, 8, dtype=torch.bfloat16)
    out = rotation_trick(e, q)
    assert out.dtype == torch.bfloat16 and torch.equal(out, q)


@pytest.mark.parametrize("case", ["e_zero", "e_tiny", "q_zero", "q_tiny", "antiparallel", "nearly_antiparallel"])
def test_degenerate_vectors_give_finite_values_and_gradients(case):
    torch.manual_seed(9)
    v = torch.randn(8)
    e, q = torch.randn(8), torch.randn(8)
    if case == "e_zero":
        e = torch.zeros(8)
    elif case == "e_tiny":
        e = v * 1e-12
    elif case == "q_zero":
        q = torch.zeros(8)
    elif case == "q_tiny":
        q = v * 1e-12
    elif case == "antiparallel":
        e, q = v, -2 * v
    else:
        e, q = v, -2 * v + 1e-9 * torch.randn(8)
    g = torch.randn(8)
    out, grad = grad_of(rotation_trick, e[None], q[None], g[None])
    assert torch.equal(out, q[None])
    assert torch.isfinite(grad).all()
    # the gradient is never inflated by more than lambda (norms are preserved up to the scale)
    lam = max(q.norm() / e.norm(), torch.tensor(1.0)) if e.norm() > 1e-6 and q.norm() > 1e-6 else 1.0
    assert grad.norm() <= lam * g.norm() * (1 + 1e-5)


def test_antiparallel_case_uses_an_orthogonal_map():
    v = torch.tensor([1.0, 2.0, -1.0, 0.5])
    g = torch.randn(4)
    _, grad = grad_of(rotation_trick, v[None], -v[None], g[None])
    # lambda == 1 here, and the reflection preserves the gradient norm
    assert grad.norm().item() == pytest.approx(g.norm().item(), rel=1e-6)


def test_degenerate_frames_fall_back_to_straight_through():
    e = torch.zeros(3, 8)
    q = torch.randn(3, 8)
    g = torch.randn(3, 8)
    _, grad = grad_of(rotation_trick, e, q, g)
    assert torch.equal(grad, g)


def test_rotation_stats():
    e = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    q = torch.tensor([[2.0, 0.0], [-4.0, 0.0], [1.0, 0.0]])
    stats = rotation_stats(e, q)
    assert stats["lambda"].item() == pytest.approx(3.0)  # mean of 2 and 4, zero vector excluded
    assert stats["obtuse"].item() == pytest.approx(1 / 3)
    assert stats["degenerate"].item() == pytest.approx(1 / 3)

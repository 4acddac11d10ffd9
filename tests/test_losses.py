"""Tests of the focal loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tropicrop.losses import FocalLoss


def make_batch(k: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (2, K, 6, 7) requiring grad and targets (2, 6, 7) with some 0 = "no reference" pixels."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, k, 6, 7, generator=gen, requires_grad=True)
    target = torch.randint(0, k, (2, 6, 7), generator=gen)
    return logits, target


def test_focal_loss_equals_cross_entropy_at_gamma_zero() -> None:
    logits, target = make_batch()
    expected = F.cross_entropy(logits, target, ignore_index=0)
    torch.testing.assert_close(FocalLoss(gamma=0.0)(logits, target), expected)


def test_focal_loss_matches_formula_and_down_weights_easy_pixels() -> None:
    logits, target = make_batch()
    keep = target != 0
    p = logits.softmax(1).gather(1, target.unsqueeze(1)).squeeze(1)
    expected = (-((1 - p) ** 2) * p.log())[keep].mean()
    got = FocalLoss(gamma=2.0)(logits, target)
    torch.testing.assert_close(got, expected)
    assert got < F.cross_entropy(logits, target, ignore_index=0)


def test_focal_loss_ignores_no_reference_pixels() -> None:
    logits, target = make_batch()
    loss = FocalLoss()
    changed = logits.detach().clone()
    changed[target.unsqueeze(1).expand_as(changed) == 0] += 100.0  # only pixels whose target is 0
    torch.testing.assert_close(loss(changed, target), loss(logits, target))
    loss(logits, target).backward()
    assert logits.grad is not None
    assert logits.grad.permute(0, 2, 3, 1)[target == 0].abs().max() == 0


def test_focal_loss_ignore_value_may_be_out_of_class_range() -> None:
    logits, target = make_batch()
    target[:, 0] = 255
    expected = F.cross_entropy(logits, target, ignore_index=255)
    torch.testing.assert_close(FocalLoss(gamma=0.0, ignore_index=255)(logits, target), expected)


def test_focal_loss_alpha_weights_each_pixel_by_its_class() -> None:
    logits, target = make_batch()
    alpha = torch.tensor([0.0, 1.0, 2.0, 0.5, 3.0])
    keep = (target != 0).sum()
    expected = F.cross_entropy(logits, target, weight=alpha, ignore_index=0, reduction="sum") / keep
    torch.testing.assert_close(FocalLoss(gamma=0.0, alpha=alpha)(logits, target), expected)
    plain = FocalLoss(gamma=2.0)(logits, target)
    torch.testing.assert_close(FocalLoss(gamma=2.0, alpha=[1.0] * 5)(logits, target), plain)


def test_focal_loss_all_ignored_batch_is_zero_with_grad() -> None:
    logits, _ = make_batch()
    target = torch.zeros(2, 6, 7, dtype=torch.int64)
    value = FocalLoss()(logits, target)
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert logits.grad is not None and logits.grad.abs().max() == 0


def test_focal_loss_rejects_mismatched_shapes_and_alpha() -> None:
    logits, target = make_batch()
    with pytest.raises(ValueError, match="disagree"):
        FocalLoss()(logits, target[0])
    with pytest.raises(ValueError, match="alpha has 3 weights"):
        FocalLoss(alpha=[1.0, 1.0, 1.0])(logits, target)
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1.0)

"""Inference-only preparation of a trained network: BatchNorm folded into convolutions, channels-last
U-Net on the CPU. The networks themselves stay as trained; only prediction changes their form."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from tropicrop.models import ConvLSTM


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution in a Sequential into that convolution (in
    place; eval mode). An eval-mode BatchNorm is an affine map per channel, so it becomes the convolution's
    weight scale and bias (:func:`torch.nn.utils.fusion.fuse_conv_bn_eval`): the same outputs to float
    rounding, one pass less over every feature map. Returns ``model``."""
    if model.training:
        raise ValueError("fold_batchnorm needs an eval-mode model (BatchNorm running statistics)")
    for block in model.modules():
        if not isinstance(block, nn.Sequential) or len(block) < 2:
            continue
        conv, bn = block[0], block[1]
        if isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and isinstance(bn, nn.BatchNorm2d):
            block[0] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
            block[1] = nn.Identity()
    return model


def use_channels_last(model: nn.Module) -> nn.Module:
    """Store the weights of every convolution outside a ConvLSTM channels-last (in place); their feature
    maps then follow. On the CPU the U-Net's convolutions have few channels over many pixels, which oneDNN
    runs several times faster channels-last; the ConvLSTM's 256 -> 1024 convolution is a little slower that
    way (``benchmarks/inference.py``), so it keeps the default layout. Returns ``model``."""
    in_lstm = {id(m) for lstm in model.modules() if isinstance(lstm, ConvLSTM) for m in lstm.modules()}
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d) and id(module) not in in_lstm:
            module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # documented, not in the stubs
    return model


def prepare_for_inference(model: nn.Module, device: torch.device, channels_last: bool = True) -> nn.Module:
    """``model`` in eval mode on ``device``, BatchNorm folded and, on the CPU, channels-last (measured faster
    there only, ``benchmarks/inference.py``; ``channels_last=False`` to compare)."""
    model = fold_batchnorm(model.eval())
    if channels_last and device.type == "cpu":
        use_channels_last(model)
    return model.to(device)

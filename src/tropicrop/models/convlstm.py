"""Convolutional LSTM (Shi et al., 2015) over image sequences, with a mask for padded dates.

One :class:`torch.nn.Conv2d` holds the parameters of all four gates, as in the paper: the gates at step
``t`` are ``conv([x_t, h_{t-1}])``. The computation is reordered for speed, with identical results:

* The convolution is linear in its input channels, so its weight is split into the part that sees ``x``
  and the part that sees ``h``. The ``x`` part runs once over all ``T`` dates as one batched convolution;
  only the ``h`` part stays inside the (inherently sequential) time loop, and no ``[x_t, h]`` is built.
  Spatially constant input channels (the day of year) are not convolved at all (:meth:`ConvLSTM.constant_response`);
  their share is added to each frame's input gates once, however many sequences contain the frame.
* The time loop is one autograd node (:class:`_Recurrence`) with a hand-written backward pass through
  time: per step it only propagates the gradient to ``h_{t-1}``; the gradient of the recurrent weight is
  accumulated once at the end, as one weight-gradient convolution over all ``T`` steps stacked in the batch
  dimension, instead of ``T`` small ones (in a CPU profile of training, ``T`` small weight gradients
  were the largest single cost).
* Steps where no sequence in the batch is valid are skipped, and so is the recurrent convolution until the
  first valid step (the state is still zero there).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tropicrop.models.frames import FrameSteps


def _steps_to_run(valid: Tensor | None, steps: int) -> tuple[list[bool], list[bool]]:
    """Per step: does any sequence need it, do all (one host sync for the whole sequence)."""
    if valid is None:
        return [True] * steps, [True] * steps
    return valid.any(1).tolist(), valid.all(1).tolist()


Saved = list[tuple[int, Tensor, Tensor, Tensor | None, Tensor]]


def _state_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of the cell's state and elementwise gate arithmetic: at least float32, so that under bf16
    autocast the convolutions run in bf16 but ``c`` (a sum over many steps) and the gates do not lose bits."""
    return torch.promote_types(dtype, torch.float32)


def _run_forward(gates_x: Tensor | FrameSteps, w_h: Tensor, valid: Tensor | None, padding: int, store: bool,
                 constants: tuple[Tensor, Tensor] | None = None, every_state: bool = True) -> tuple[Tensor, Saved]:
    """Time loop of the LSTM cell in time-major layout.

    Args:
        gates_x: ``(T, B, 4 * hid, H, W)`` input part of the gate pre-activations (bias included), or the
            same read step by step from a table of frames (:class:`FrameSteps`, inference only).
        w_h: ``(4 * hid, hid, k, k)`` recurrent part of the gate convolution weight.
        valid: ``(T, B)`` bool or ``None`` (all valid).
        padding: spatial padding of the recurrent convolution.
        store: keep what the backward pass needs.
        constants: ``(values (T, B, k), response (k, 4 * hid * H * W))`` in the state dtype
            (:func:`_state_dtype`): ``values[t] @ response`` is added to the pre-activations of step ``t``
            (constant input channels, added step by step instead of materialising a second ``gates_x``).
        every_state: return every hidden state; if false (and not ``store``) only the last, as ``(1, B, ...)``.

    Under bf16 autocast ``gates_x`` and ``w_h`` are bf16: the recurrent convolution runs in bf16, its output
    and ``gates_x`` are summed, and the gates and the state are computed, in float32 (:func:`_state_dtype`).

    Returns:
        ``hs`` ``(T, B, hid, H, W)`` in the dtype of ``gates_x``, the hidden state after each step, and, if
        ``store``, per computed step ``(t, sigmoid([i, f, o]), tanh(g), c_{t-1} or None at the first,
        tanh(c_t))`` in the state dtype.
    """
    steps, batch, four_hid, height, width = gates_x.shape
    hid = four_hid // 4
    any_valid, all_valid = _steps_to_run(valid, steps)
    keep_states = store or every_state
    like = gates_x.table if isinstance(gates_x, FrameSteps) else gates_x
    hs = like.new_empty(steps if keep_states else 1, batch, hid, height, width)
    state = _state_dtype(like.dtype)
    h = like.new_zeros(batch, hid, height, width, dtype=state)
    c = torch.zeros_like(h)
    started = False  # until the first computed step, h and c are zeros: skip their terms
    saved: Saved = []
    for t in range(steps):
        if not any_valid[t]:
            if keep_states:
                hs[t] = h
            continue
        pre = _pre_activations(gates_x[t], h if started else None, w_h, padding, state,
                               None if constants is None else (constants[0][t], constants[1]))
        keep = None if valid is None or all_valid[t] else valid[t].view(batch, 1, 1, 1)
        h, c, step_saved = _cell_step(pre, h, c, started, keep)
        if keep_states:
            hs[t] = h
        if store:
            saved.append((t, *step_saved))
        started = True
    if not keep_states:
        hs[0] = h
    return hs, saved


def _pre_activations(gates_x_t: Tensor, h: Tensor | None, w_h: Tensor, padding: int, state: torch.dtype,
                     constants_t: tuple[Tensor, Tensor] | None) -> Tensor:
    """The gate pre-activations ``(B, 4 * hid, H, W)`` of one step, in the state dtype: the input part
    ``gates_x_t``, plus the recurrent convolution of ``h`` (None before the first computed step, when the
    state is zeros and the term is skipped), plus ``values @ response`` of the constant channels."""
    if h is not None:
        pre = F.conv2d(h.to(w_h.dtype), w_h, padding=padding).to(state)
        pre += gates_x_t
        if constants_t is not None:
            pre.view(pre.shape[0], -1).addmm_(*constants_t)
    elif constants_t is not None:
        pre = gates_x_t.to(state, copy=True)
        pre.view(pre.shape[0], -1).addmm_(*constants_t)
    else:
        pre = gates_x_t.to(state)
    return pre


def _cell_step(pre: Tensor, h: Tensor, c: Tensor, started: bool,
               keep: Tensor | None) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor | None, Tensor]]:
    """One LSTM cell update from the pre-activations ``pre``.

    Args:
        pre: ``(B, 4 * hid, H, W)`` pre-activations of the gates ``[i, f, o, g]``.
        h: the hidden state before the step.
        c: the cell state before the step.
        started: whether a step was computed before (until then ``h`` and ``c`` are zeros: their terms are
            skipped).
        keep: ``(B, 1, 1, 1)`` bool, the samples whose date is valid (the others keep ``h`` and ``c``), or
            None when all are.

    Returns:
        ``h``, ``c`` after the step, and what the backward pass needs of it: ``(sigmoid([i, f, o]), tanh(g),
        c_{t-1} or None at the first, tanh(c_t))``.
    """
    hid = pre.shape[1] // 4
    ifo = torch.sigmoid(pre[:, : 3 * hid])
    g = torch.tanh(pre[:, 3 * hid :])
    i, f, o = ifo[:, :hid], ifo[:, hid : 2 * hid], ifo[:, 2 * hid :]
    c_prev = c if started else None
    c_new = i * g if c_prev is None else torch.addcmul(f * c_prev, i, g)
    if keep is None:
        c = c_new
        tanh_c = torch.tanh(c)
        h = o * tanh_c
    else:
        c = torch.where(keep, c_new, c)
        tanh_c = torch.tanh(c)
        h = torch.where(keep, o * tanh_c, h)
    return h, c, (ifo, g, c_prev, tanh_c)


class _Recurrence(torch.autograd.Function):
    """``(gates_x (T, B, 4hid, H, W), w_h, valid (T, B) | None, padding) -> hs (T, B, hid, H, W)`` with a
    hand-written backward pass through time (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, gates_x: Tensor, w_h: Tensor, valid: Tensor | None, padding: int) -> Tensor:
        hs, saved = _run_forward(gates_x, w_h, valid, padding, store=True)
        ctx.saved = saved
        ctx.padding = padding
        ctx.save_for_backward(w_h, valid, hs)
        return hs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_hs: Tensor) -> tuple[Tensor, Tensor, None, None]:
        w_h, valid, hs = ctx.saved_tensors
        saved: Saved = ctx.saved
        padding: int = ctx.padding
        steps, batch, hid = hs.shape[:3]
        # the convolutions run in the forward's dtype (bf16 under autocast, which is off in backward),
        # the gradients of the state in float32 at least (_run_forward)
        grad_gates = hs.new_zeros(steps, batch, 4 * hid, *hs.shape[3:])
        grad_w = torch.zeros_like(w_h)
        if not saved:
            return grad_gates, grad_w, None, None
        first = saved[0][0]
        all_valid = _steps_to_run(valid, steps)[1]
        by_step = {step[0]: step[1:] for step in saved}
        w = w_h.to(hs.dtype)
        dh = torch.zeros_like(hs[0], dtype=_state_dtype(hs.dtype))
        dc = torch.zeros_like(dh)
        for t in range(steps - 1, first - 1, -1):
            dh = dh + grad_hs[t]
            if t not in by_step:  # no sequence valid at t: state and gradients pass through
                continue
            ifo, g, c_prev, tanh_c = by_step[t]
            i, f, o = ifo[:, :hid], ifo[:, hid : 2 * hid], ifo[:, 2 * hid :]
            dc_t = dc + dh * o * (1 - tanh_c * tanh_c)
            d_f = torch.zeros_like(f) if c_prev is None else dc_t * c_prev * f * (1 - f)
            dgates = torch.cat((dc_t * g * i * (1 - i), d_f, dh * tanh_c * o * (1 - o), dc_t * i * (1 - g * g)), dim=1)
            partial = valid is not None and not all_valid[t]
            if partial:
                keep = valid[t].view(batch, 1, 1, 1)
                dgates = torch.where(keep, dgates, 0.0)
                dc = torch.where(keep, dc_t * f, dc)
            else:
                dc = dc_t * f
            grad_gates[t] = dgates
            if t > first:
                dh_prev = F.conv_transpose2d(grad_gates[t], w, padding=padding).to(dh.dtype)
                dh = torch.where(keep, dh_prev, dh) if partial else dh_prev
        if steps - 1 > first:  # recurrent weight: one weight-gradient convolution over all steps
            h_prev = hs[first : steps - 1].flatten(0, 1)
            d_out = grad_gates[first + 1 :].flatten(0, 1)
            grad_w = torch.ops.aten.convolution_backward(
                d_out, h_prev, w, None, [1, 1], [padding, padding], [1, 1], False, [0, 0], 1, [False, True, False]
            )[1].to(w_h.dtype)
        return grad_gates, grad_w, None, None


class ConvLSTM(nn.Module):
    """A single-layer, unidirectional 2-D convolutional LSTM with a padding mask.

    Input ``x`` is ``(B, T, C, H, W)``; the output is the last hidden state ``(B, hidden, H, W)`` (N-to-1,
    the paper's configuration) or, with ``return_sequence=True``, every hidden state ``(B, T, hidden, H,
    W)``. Gate order in the convolution's output channels is input, forget, output, candidate; the forget
    bias starts at 1 so that early in training the cell keeps its memory (Jozefowicz et al., 2015).

    ``valid`` ``(B, T)`` bool marks real dates. At a padded date the state ``(h, c)`` is carried over
    unchanged, so a sequence with leading padded dates gives exactly the output of the same sequence without
    them. With ``return_sequence=True`` a padded date's output is the carried-over state.

    ``constant_channels`` input channels may be spatially constant per date (VUnetConvLSTM's day of year):
    they are passed as values ``constants (B, T, k)``, not as maps, and their share of the gates is
    ``values @ R`` with ``R`` the convolution of constant-one maps (computed once per call; its zero padding
    at the border is the same as the full convolution's), which is exact and saves convolving ``k`` more
    channels at every date. The weight layout is the paper's single convolution over
    ``[x, constants, h]``.

    The computation is also exposed in two parts: :meth:`input_gates` (per frame, independent of the
    sequence) and :meth:`recur` (per sequence), so that inference can compute the input part of each date
    of a tile once and reuse it for every window that contains the date.

    Args:
        in_channels: channels ``C`` of each input frame (constant channels not included).
        hidden_channels: channels of ``h`` and ``c``.
        kernel_size: odd spatial size of the gate convolution ("same" zero padding).
        return_sequence: return every hidden state instead of the last one.
        constant_channels: number ``k`` of spatially constant input channels, given as ``constants``.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3, return_sequence: bool = False,
                 constant_channels: int = 0) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"ConvLSTM kernel_size must be odd, got {kernel_size}")
        self.in_channels = in_channels
        self.constant_channels = constant_channels
        self.hidden_channels = hidden_channels
        self.return_sequence = return_sequence
        self.conv = nn.Conv2d(in_channels + constant_channels + hidden_channels, 4 * hidden_channels, kernel_size,
                              padding=kernel_size // 2)
        self.reset_gate_bias()

    def reset_gate_bias(self) -> None:
        """Zero every gate bias except the forget gate's, which is set to 1."""
        bias = self.conv.bias
        assert bias is not None
        hid = self.hidden_channels
        with torch.no_grad():
            bias.zero_()
            bias[hid : 2 * hid].fill_(1.0)

    @property
    def _padding(self) -> int:
        return self.conv.kernel_size[0] // 2

    def input_gates(self, frames: Tensor, constants: Tensor | None = None) -> Tensor:
        """Input part of the gate pre-activations, bias included: ``(N, C, H, W) -> (N, 4 * hidden, H, W)``.

        It depends on each frame alone (the convolution is linear in its input channels), so frames shared
        by several sequences need it once. ``constants (N, k)``, the constant channels' values of each
        frame, add their share too (then pass ``constants_in_gates=True`` to :meth:`recur`): one pass over
        each frame's gates instead of one per step of every sequence that contains the frame.
        """
        if frames.dim() != 4 or frames.shape[1] != self.in_channels:
            raise ValueError(f"ConvLSTM expects frames of shape (N, {self.in_channels}, H, W), got {tuple(frames.shape)}")
        w_x = self.conv.weight[:, : self.in_channels]
        gates = F.conv2d(frames, w_x, self.conv.bias, padding=self._padding)
        if constants is None:
            return gates
        n, k = len(frames), self.constant_channels
        if k == 0 or tuple(constants.shape) != (n, k):
            raise ValueError(f"this ConvLSTM has {k} constant channel(s): constants must be (N, {k}) = {(n, k)}, "
                             f"got {tuple(constants.shape)}")
        response = self.constant_response((gates.shape[-2], gates.shape[-1]), gates.dtype, gates.device)
        gates.view(n, -1).addmm_(constants.to(gates.dtype), response)  # the convolution's output, not needed by its backward
        return gates

    def constant_response(self, size: tuple[int, int], dtype: torch.dtype, device: torch.device) -> Tensor:
        """``(k, 4 * hidden * H * W)``: the gate pre-activations of each constant channel set to 1 on an
        ``H x W`` map, so that constant values ``v (..., k)`` add ``v @ response`` to the gates.

        The convolution of a constant map is the sum of the kernel taps that fall inside the map (zero
        padding at the border, as in the full convolution); which taps do is separable in rows and columns.
        """
        k, first, pad = self.constant_channels, self.in_channels, self._padding
        w_k = self.conv.weight[:, first : first + k].to(dtype)  # (4 * hidden, k, kh, kw)

        def inside(length: int, taps: int) -> Tensor:  # (taps, length): tap d of output position y reads y + d - pad
            pos = torch.arange(length, device=device).view(1, -1) + torch.arange(taps, device=device).view(-1, 1) - pad
            return ((pos >= 0) & (pos < length)).to(dtype)

        rows, cols = inside(size[0], w_k.shape[2]), inside(size[1], w_k.shape[3])
        return torch.einsum("okab,ay,bx->koyx", w_k, rows, cols).reshape(k, -1).to(dtype)  # autocast: bf16 einsum

    def recur(self, gates: Tensor, valid: Tensor | None = None, constants: Tensor | None = None,
              index: Tensor | None = None, constants_in_gates: bool = False,
              return_sequence: bool | None = None) -> Tensor:
        """Run the cell over sequences of input gate pre-activations (from :meth:`input_gates`) and the
        constant channels' values ``constants (B, T, k)`` (``None`` with ``constants_in_gates``: the gates
        already include them); ``valid`` and the output as in ``forward``. ``return_sequence`` overrides
        the layer's setting for this call (a many-to-many network also needs the last state alone).

        ``gates`` is ``(B, T, 4 * hidden, H, W)``, or, with ``index (B, T)`` int64, a table of frames
        ``(N, 4 * hidden, H, W)`` of which step ``t`` of sequence ``b`` uses row ``index[b, t]`` (``-1``:
        zeros); without gradients the steps are then read from the table, never copied into sequences.
        """
        k = self.constant_channels
        every = self.return_sequence if return_sequence is None else return_sequence
        if gates.dim() != (4 if index is not None else 5) or gates.shape[-3] != 4 * self.hidden_channels:
            want = "(N, {c}, H, W) with index" if index is not None else "(B, T, {c}, H, W)"
            raise ValueError(f"gates must have shape {want.format(c=4 * self.hidden_channels)}, got {tuple(gates.shape)}")
        if index is not None and index.dim() != 2:
            raise ValueError(f"index must have shape (B, T), got {tuple(index.shape)}")
        b, t = index.shape if index is not None else gates.shape[:2]
        if valid is not None and tuple(valid.shape) != (b, t):
            raise ValueError(f"valid must have shape (B, T) = {(b, t)}, got {tuple(valid.shape)}")
        self._check_constants(constants, b, t, constants_in_gates)
        w_h = self.conv.weight[:, self.in_channels + k :]
        dtype = torch.get_autocast_dtype(gates.device.type) if torch.is_autocast_enabled(gates.device.type) else w_h.dtype
        w_h = w_h.to(dtype, memory_format=torch.contiguous_format)  # once, not per step (autocast caches leaves only)
        valid_t = None if valid is None else valid.to(torch.bool).t().contiguous()
        size = (gates.shape[-2], gates.shape[-1])
        grad = torch.is_grad_enabled() and (gates.requires_grad or w_h.requires_grad)
        # with gradients the constants' share is one (autocast) matmul; without, it is added to the float32
        # pre-activations step by step (_run_forward), so it is made in their dtype
        response_dtype = gates.dtype if grad else _state_dtype(gates.dtype)
        response = None if constants is None else self.constant_response(size, response_dtype, gates.device)
        steps = FrameSteps(gates, index) if index is not None else None
        if grad:
            gates_t = steps.materialise() if steps is not None else gates.transpose(0, 1)  # time-major
            if constants is not None and response is not None:
                flat = torch.addmm(gates_t.transpose(0, 1).reshape(b * t, -1), constants.reshape(b * t, k).to(gates.dtype),
                                   response)
                gates_t = flat.view(b, t, *gates_t.shape[2:]).transpose(0, 1)
            hs = _Recurrence.apply(gates_t, w_h, valid_t, self._padding)
        else:
            extra = None if constants is None or response is None else (constants.to(response.dtype).transpose(0, 1), response)
            source = steps if steps is not None else gates.transpose(0, 1)
            hs = _run_forward(source, w_h, valid_t, self._padding, store=False, constants=extra,
                              every_state=every)[0]
        if every:
            return hs.transpose(0, 1)
        return hs[-1]

    def forward(self, x: Tensor, valid: Tensor | None = None, constants: Tensor | None = None) -> Tensor:
        """Run the cell over the sequence.

        Args:
            x: ``(B, T, C, H, W)`` float frames.
            valid: optional ``(B, T)`` bool; ``False`` marks a padded date whose step is skipped.
            constants: ``(B, T, k)`` values of the constant channels (required when ``k > 0``).

        Returns:
            ``(B, hidden, H, W)``, or ``(B, T, hidden, H, W)`` with ``return_sequence``.
        """
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(f"ConvLSTM expects x of shape (B, T, {self.in_channels}, H, W), got {tuple(x.shape)}")
        b, t = x.shape[:2]
        self._check_constants(constants, b, t, in_gates=False)
        flat = None if constants is None else constants.flatten(0, 1)  # their share enters each frame's gates once
        gates = self.input_gates(x.flatten(0, 1), flat).view(b, t, -1, *x.shape[-2:])
        return self.recur(gates, valid, constants_in_gates=flat is not None)

    def _check_constants(self, constants: Tensor | None, b: int, t: int, in_gates: bool) -> None:
        """Raise ValueError unless ``constants`` is ``(B, T, k)``, or ``None`` when there are no constant
        channels or the gates already include them."""
        k = self.constant_channels
        expect_none = k == 0 or in_gates
        if (constants is None) != expect_none or (constants is not None and tuple(constants.shape) != (b, t, k)):
            got = None if constants is None else tuple(constants.shape)
            raise ValueError(f"this ConvLSTM has {k} constant channel(s){' in its gates' if in_gates else ''}: "
                             f"constants must be {'None' if expect_none else f'(B, T, {k}) = {(b, t, k)}'}, got {got}")

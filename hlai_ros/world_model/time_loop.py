"""The rollout's time loop without Python per step of the horizon (issue 14).

`WorldModel` rolls its ensemble MLP forward one step at a time: each step is a batched matmul
per layer and an activation. Without autograd that loop runs here as one TorchScript function,
so the horizon's steps run in TorchScript's interpreter and not as Python bytecode (one Python
call per rollout instead of ~5 per step). The operators are the same, in the same order, so
the states are bit for bit those of the Python loop (`test/actor/test_plan_speed.py`).

TorchScript is in maintenance in PyTorch 2.x (`torch.jit.script` warns that it is deprecated;
the warning is silenced here). Where it cannot script this function (no source files, a torch
without `torch.jit`, an error), or when the environment variable `HLAI_TORCHSCRIPT=0` is set,
`time_loop` is the same loop in Python, and `SCRIPTED` says which one runs. `torch.compile`
was measured and is slower here (BENCHMARKS.md, "torch.compile on CPU: not adopted").
"""
from __future__ import annotations

import os
from typing import List
import warnings

import torch
from torch import nn
import torch.nn.functional as F

ACTIVATION_CODES = {nn.SiLU: 0, nn.ReLU: 1, nn.ELU: 2, nn.Tanh: 3, nn.GELU: 4}
"""The activations of `EnsembleMLP` (`world_model.ensemble`), as the loop's codes."""


def activation_code(activations: list[nn.Module]) -> int:
    """The loop's code for an MLP's activation modules (one kind, default settings)."""
    kinds = {type(a) for a in activations}
    if not kinds:  # no hidden layer: no activation to run
        return 0
    if len(kinds) != 1 or next(iter(kinds)) not in ACTIVATION_CODES:
        known = sorted(c.__name__ for c in ACTIVATION_CODES)
        raise ValueError(f'the time loop needs one activation of {known}, got '
                         f'{sorted(k.__name__ for k in kinds)}')
    return ACTIVATION_CODES[kinds.pop()]


def _loop(x: torch.Tensor, zb: torch.Tensor, w_sa: torch.Tensor, weights: List[torch.Tensor],
          biases: List[torch.Tensor], activation: int, steps: int, size: int,
          delta: bool) -> None:
    """Fill x (T+1, E, N, S+A) in place: x[k+1, ..., :S] from x[k] for k < steps.

    x[k] holds step k's input (s[k], a[k]); zb (E, N, H) is the first layer's bias plus the
    latent's part; w_sa (E, S+A, H) the first layer's state-action weights; weights / biases
    the later layers'; the activation runs in place where it has an in-place form (SiLU,
    ReLU, ELU), as `WorldModel`'s Python loop does; `delta`: the output is the state change.
    """
    for k in range(steps):
        h = torch.baddbmm(zb, x[k], w_sa)
        for i in range(len(weights)):
            if activation == 0:
                h = F.silu(h, inplace=True)
            elif activation == 1:
                h = F.relu(h, inplace=True)
            elif activation == 2:
                h = F.elu(h, inplace=True)
            elif activation == 3:
                h = torch.tanh(h)
            else:
                h = F.gelu(h)
            h = torch.baddbmm(biases[i], h, weights[i])
        if delta:
            torch.add(x[k, :, :, :size], h, out=x[k + 1, :, :, :size])
        else:
            x[k + 1, :, :, :size] = h


def _script():
    if os.environ.get('HLAI_TORCHSCRIPT', '1').strip().lower() in ('0', 'false', 'no', 'off'):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            return torch.jit.script(_loop)
    except Exception:  # noqa: BLE001 - any failure to script falls back to the Python loop
        return None


_SCRIPTED_LOOP = _script()
SCRIPTED: bool = _SCRIPTED_LOOP is not None
"""Whether `time_loop` runs in TorchScript (else the same loop in Python)."""


def time_loop(x: torch.Tensor, zb: torch.Tensor, w_sa: torch.Tensor,
              weights: list[torch.Tensor], biases: list[torch.Tensor], activation: int,
              steps: int, size: int, delta: bool) -> None:
    """`_loop` in TorchScript when available, else in Python (same arithmetic)."""
    if _SCRIPTED_LOOP is not None:
        _SCRIPTED_LOOP(x, zb, w_sa, list(weights), list(biases), activation, steps, size, delta)
    else:
        _loop(x, zb, w_sa, list(weights), list(biases), activation, steps, size, delta)

"""Mixed precision: bf16 autocast for forward passes and losses, fp32 everywhere else.

`train.precision` (and `evaluate.precision`) name the arithmetic: `fp32`, `bf16`, or `auto`
(bf16 where the device computes it natively, else fp32). Under bf16 the parameters, their
gradients and the optimisers' state stay fp32 (the master copy): autocast only casts the
inputs of matmuls and convolutions to bf16, which is where the time goes, and keeps the loss
functions it knows (mse_loss, binary_cross_entropy_with_logits, ...) in fp32.

Loss terms a model writes by hand (a KL as `(...).sum(1)`, a critic's `d.pow(2).mean()`)
would otherwise come out in bf16, whose 8-bit mantissa rounds a 100-nat loss to the nearest
0.5: `autocast` therefore also makes every sum or mean of a bf16 tensor accumulate in, and
return, fp32, so each loss and metric the trainer sees is reduced in fp32; and bf16 values a
model writes into its fp32 state (ACN's code table, VQ-VAE's EMA codebook) are widened to fp32
first, so models need no change to run under bf16.

Native support is asked of torch, never guessed from a device name: CUDA's
`torch.cuda.is_bf16_supported(including_emulation=False)`, and on a CPU the instruction sets
torch's cpuinfo reports (`torch.cpu.get_capabilities()`: AVX512-BF16 or AMX-BF16 on x86, the
BF16 extension on ARM). oneDNN's own `torch.ops.mkldnn._is_mkldnn_bf16_supported()` is not
used: it also says yes on plain AVX-512, where bf16 is only emulated.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Literal

import torch
from torch.overrides import TorchFunctionMode

from aebench.errors import UserError

Precision = Literal["fp32", "bf16", "auto"]

# The x86 and ARM capability flags (torch.cpu.get_capabilities) of instructions that compute bf16.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def native_bf16(device: torch.device | str) -> bool:
    """Whether `device` computes bf16 in hardware (not by emulation)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        capabilities = torch.cpu.get_capabilities()
        return any(capabilities.get(flag, False) for flag in CPU_BF16_FLAGS)
    return False


def resolve(precision: Precision, device: torch.device | str, key: str = "train.precision") -> torch.dtype:
    """The compute dtype for `precision` on `device`; an explicit bf16 the device lacks is
    the user's error (emulated bf16 brings bf16's rounding without its speed)."""
    if precision == "fp32":
        return torch.float32
    supported = native_bf16(device)
    if precision == "auto":
        return torch.bfloat16 if supported else torch.float32
    if not supported:
        raise UserError(f"`{key}` is bf16 but the {torch.device(device).type} device here has no native bf16 "
                        f"(CUDA with bf16, or a CPU with AVX512-BF16 or AMX): set `{key}` to `auto` or `fp32`")
    return torch.bfloat16


# Reductions whose bf16 input is widened to fp32 first, so they accumulate and return fp32.
_REDUCTIONS = frozenset({
    torch.sum, torch.Tensor.sum, torch.mean, torch.Tensor.mean, torch.nansum, torch.Tensor.nansum,
    torch.logsumexp, torch.Tensor.logsumexp, torch.var, torch.Tensor.var, torch.std, torch.Tensor.std,
    torch.norm, torch.Tensor.norm, torch.linalg.vector_norm,
})


def _is_bf16(value) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16


def _in_place(func) -> bool:
    """torch's naming: `index_add_` writes into its first argument (dunders are not in-place)."""
    name = getattr(func, "__name__", "")
    return name.endswith("_") and not name.startswith("_")


class _FP32State(TorchFunctionMode):
    """Keeps what the trainer and the model's state see in fp32 under autocast: a reduction
    widens its bf16 input first (its gradient flows back as bf16), and an in-place op on an
    fp32 tensor (a code table's `index_copy_`, a codebook's `index_add_`) widens its bf16
    arguments, which such ops would otherwise refuse."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if args and _is_bf16(args[0]) and func in _REDUCTIONS:
            args = (args[0].float(), *args[1:])
        elif args and isinstance(args[0], torch.Tensor) and args[0].dtype == torch.float32 and _in_place(func):
            args = (args[0], *(a.float() if _is_bf16(a) else a for a in args[1:]))
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def autocast(dtype: torch.dtype, device: torch.device | str) -> Iterator[None]:
    """Run the block under `dtype` autocast on `device` (a no-op for fp32), reductions in fp32."""
    if dtype == torch.float32:
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=dtype), _FP32State():
        yield

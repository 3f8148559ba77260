"""One GRU layer (reset-after form) with a hand-written backward through time.

``CustomGRU`` in its default form (``reset_after=True``, no layer norm, tanh or ReLU) runs each
layer through :class:`GRULayerFunction` instead of building an autograd graph of ~10 nodes per
time step. The forward is the same loop; the backward walks time in reverse by hand:

.. code-block:: text

    forward, per step t (x_t = W_i x_t + b_i precomputed for all t, shape (B, 3H)):
        p_t   = W_h h_{t-1} + b_h                       (B, 3H) = [p_r, p_z, p_n]
        r, z  = σ(x_r + p_r), σ(x_z + p_z)
        n     = act(x_n + r ⊙ p_n)
        h_t   = n + z ⊙ (h_{t-1} − n)

    backward, with g_t = ∂L/∂h_t (the output's gradient plus what flows back from t+1):
        a_n   = g_t ⊙ (1 − z) ⊙ act'(n)                 ∂L/∂(x_n + r ⊙ p_n)
        a_z   = g_t ⊙ (h_{t-1} − n) ⊙ z(1 − z)
        a_r   = a_n ⊙ p_n ⊙ r(1 − r)
        ∂L/∂x_t = [a_r, a_z, a_n]                        → the input projection's gradient
        ∂L/∂p_t = [a_r, a_z, a_n ⊙ r] =: d_t
        g_{t-1} = ∂L/∂h_{t-1} (from outside) + g_t ⊙ z + d_t W_h

Everything that does not depend on g is gathered before the loop into one factor tensor
``F_t = [act'(n)(1−z) p_n r(1−r), (h_{t-1}−n) z(1−z), act'(n)(1−z) r]`` (vectorized over all
T steps), so a backward step is three kernels: ``d_t = g_t ⊙ F_t`` (broadcast over the three
gate blocks), ``g_{t-1} = ∂L/∂h_{t-1} + g_t ⊙ z`` and ``g_{t-1} += d_t W_h``. The weight
gradients are then one large matmul over all steps, ``∂L/∂W_h = Σ_t d_tᵀ h_{t-1}``, and the
input-projection gradient one broadcast product. All per-step results go into buffers
allocated once per call (large ``empty`` tensors rather than T small ones: glibc's allocator
page-faults on many fresh large blocks).

Two implementations of the same loops: ``csrc/gru_bptt.cpp``, built with
``torch.utils.cpp_extension`` at first use (a C++ compiler and ninja are needed), fuses the
pointwise work of a step into one vectorized pass and keeps its large buffers between calls;
the pure-PyTorch loops below run where it cannot (no compiler, a GPU, half precision, or
``GRUBENCH_GRU_EXT=0``). Both give the numbers of ``nn.GRU`` to float rounding;
tests/test_custom_gru.py checks each path against it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from grubench.models.options import GRU_BACKENDS

BACKENDS = GRU_BACKENDS  # how CustomGRU runs a layer (grubench.models.options)

_CSRC = Path(__file__).with_name("csrc")
# The GRU's loops, the LSTM's and RNN's (grubench.models.engine) and the min-RNNs' linear
# recurrence, built into one library; engine.h is what they share.
_SOURCES = tuple(_CSRC / name for name in ("gru_bptt.cpp", "cells.cpp", "linear_scan.cpp"))
# Instruction sets for at::vec::Vectorized, by what ATen itself dispatches to on this CPU.
_CAPABILITY_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mf16c"],
    "AVX2": ["-mavx2", "-mfma", "-mf16c"],
}
_lock = threading.Lock()
_extension: dict[str, object] = {}  # "ops" -> the loaded op namespace, or None after a failure


def extension_disabled() -> bool:
    """``GRUBENCH_GRU_EXT=0`` turns the compiled path off (``auto`` then runs ``python``)."""
    return os.environ.get("GRUBENCH_GRU_EXT", "1").strip().lower() in ("0", "false", "no", "off")


def load_extension() -> object | None:
    """Builds (first use, ~20-40 s, cached under ``TORCH_EXTENSIONS_DIR``) and loads
    ``csrc/``'s loops; returns ``torch.ops.grubench_gru`` (the other cells' ops are then in
    ``torch.ops.grubench_rnn``) or None where it cannot be built
    (no compiler, no ninja, an unsupported platform), with one warning saying why."""
    with _lock:
        if "ops" not in _extension:
            _extension["ops"] = _build()
        return _extension["ops"]


def _capability() -> tuple[str, list[str]]:
    capability = torch.backends.cpu.get_cpu_capability()
    flags = _CAPABILITY_FLAGS.get(capability)
    if flags is None:
        return "DEFAULT", []
    return capability, flags


def _cflags(capability: str, flags: list[str]) -> list[str]:
    return ["-O3", "-fopenmp", f"-DCPU_CAPABILITY={capability}",
            f"-DCPU_CAPABILITY_{capability}", *flags]  # fmt: skip


def library_path() -> Path:
    """Where the built library lives: a folder named by a hash of everything the build
    depends on (source, flags, torch and Python versions), so a change builds anew."""
    from torch.utils.cpp_extension import get_default_build_root

    capability, flags = _capability()
    digest = hashlib.sha1()
    for source in (*_SOURCES, *sorted(_SOURCES[0].parent.glob("*.h"))):
        digest.update(source.read_bytes())
    for part in (*_cflags(capability, flags), torch.__version__, sys.version):
        digest.update(part.encode())
    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root())
    name = f"grubench_gru_{capability.lower()}"
    return root / f"{name}-{digest.hexdigest()[:12]}" / f"{name}.so"


def _build() -> object | None:
    if extension_disabled():
        return None
    if _registered():
        return torch.ops.grubench_gru  # already registered in this process
    try:
        library = library_path()
        if not library.is_file():
            _compile(library)  # loads what it built
        if not _registered():
            torch.ops.load_library(str(library))
    except Exception as error:  # noqa: BLE001 - any build failure means: use the Python path
        warnings.warn(
            f"grubench: could not build the compiled recurrent loops ({type(error).__name__}: "
            f"{str(error).strip().splitlines()[-1] if str(error).strip() else error!r}); "
            "the models use their PyTorch paths instead (same numbers, slower). "
            "Set GRUBENCH_GRU_EXT=0 to skip the attempt.",
            stacklevel=3,
        )
        return None
    return torch.ops.grubench_gru


def _registered() -> bool:
    return all(
        hasattr(torch.ops, space) and hasattr(getattr(torch.ops, space), op)
        for space, op in (("grubench_gru", "forward"), ("grubench_rnn", "linear_scan_forward"))
    )


def _compile(library: Path) -> None:
    """Builds into a folder of this process's own and moves the library into place
    atomically. No lock is shared between processes: a process killed while building leaves
    only its own folder behind (removed by the next build), never a lock that blocks the next
    load, as ``torch.utils.cpp_extension.load``'s own lock file does."""
    if shutil.which("ninja") is None:
        # cpp_extension runs `ninja` from PATH; the pip package (a dependency) installs it
        # next to the interpreter, which is not on PATH when the venv is not activated.
        try:
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except (ImportError, AttributeError):
            pass
    from torch.utils.cpp_extension import load

    library.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(library.parent)
    prefix = f"build-{os.getpid()}@{socket.gethostname()}-"  # the folder may be shared by hosts
    build = Path(tempfile.mkdtemp(prefix=prefix, dir=library.parent))
    print(f"grubench: compiling the recurrent loops (first use, about a minute) in {build}",
          file=sys.stderr, flush=True)  # fmt: skip
    try:
        capability, flags = _capability()
        built = load(
            name=library.stem,
            sources=[str(source) for source in _SOURCES],
            extra_cflags=_cflags(capability, flags),
            extra_ldflags=["-fopenmp"],
            build_directory=str(build),
            is_python_module=False,
            verbose=False,
        )
        os.replace(built or build / library.name, library)  # a rival build made the same
    finally:
        shutil.rmtree(build, ignore_errors=True)


def _remove_abandoned_builds(folder: Path) -> None:
    """Build folders of this host's processes that no longer run (killed while compiling)."""
    for build in folder.glob("build-*@*-*"):
        owner, host = build.name.rsplit("-", 1)[0].removeprefix("build-").split("@", 1)
        if host != socket.gethostname() or not owner.isdigit():
            continue
        try:
            os.kill(int(owner), 0)
        except ProcessLookupError:
            shutil.rmtree(build, ignore_errors=True)
        except PermissionError:  # someone else's live process
            continue


def _forward_loop(
    x_proj: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None, relu: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Returns the states ``out`` (T, B, H), ``p`` (T, B, 3H), ``rz`` (T, B, 2H) and ``n``."""
    T, B, three_h = x_proj.shape
    H = three_h // 3
    out = x_proj.new_empty(T, B, H)
    p = x_proj.new_empty(T, B, three_h)
    rz = x_proj.new_empty(T, B, 2 * H)
    n = x_proj.new_empty(T, B, H)
    w_t = w_hh.t()
    x_rz, x_n = x_proj[..., : 2 * H].unbind(0), x_proj[..., 2 * H :].unbind(0)
    p_rz, p_n = p[..., : 2 * H].unbind(0), p[..., 2 * H :].unbind(0)
    rz_t, n_t, h_t = rz.unbind(0), n.unbind(0), out.unbind(0)
    h_prev = h0
    for t in range(T):
        if b_hh is None:
            torch.mm(h_prev, w_t, out=p[t])
        else:
            torch.addmm(b_hh, h_prev, w_t, out=p[t])
        torch.add(x_rz[t], p_rz[t], out=rz_t[t]).sigmoid_()
        r, z = rz_t[t].chunk(2, 1)
        torch.addcmul(x_n[t], r, p_n[t], out=n_t[t])
        n_t[t].relu_() if relu else n_t[t].tanh_()
        torch.lerp(n_t[t], h_prev, z, out=h_t[t])
        h_prev = h_t[t]
    return out, p, rz, n


def _backward_factors(h_prev: Tensor, p: Tensor, rz: Tensor, n: Tensor, relu: bool) -> Tensor:
    """``F`` (T, B, 4, H): blocks ``[F_r, F_z, F_n, A]`` with ∂L/∂p_t = g_t ⊙ F_t[:3] and
    ∂L/∂(x_n)_t = g_t ⊙ A_t (see the module docstring)."""
    T, B, H = n.shape
    factors = n.new_empty(T, B, 4, H)
    # Vectorized over blocks of steps: temporaries of a few MB, reused from the allocator's
    # cache, where whole-sequence temporaries would be fresh page-faulting mappings each call.
    chunk = max(1, (1 << 19) // max(1, B * H))
    for s in range(0, T, chunk):
        e = min(T, s + chunk)
        r, z, n_ = rz[s:e, :, :H], rz[s:e, :, H:], n[s:e]
        f = factors[s:e]
        a = f[:, :, 3]
        if relu:
            torch.mul((n_ > 0).to(n.dtype), 1 - z, out=a)
        else:
            torch.mul(1 - n_ * n_, 1 - z, out=a)  # tanh' = 1 − n²
        torch.mul(a * p[s:e, :, 2 * H :], r * (1 - r), out=f[:, :, 0])
        torch.mul(h_prev[s:e] - n_, z * (1 - z), out=f[:, :, 1])
        torch.mul(a, r, out=f[:, :, 2])
    return factors


def _backward_loop(
    grad_out: Tensor, grad_hn: Tensor, factors: Tensor, z: Tensor, w_hh: Tensor
) -> tuple[Tensor, Tensor]:
    """Returns ``g`` (T+1, B, H) with g[t+1] = ∂L/∂h_t and g[0] = ∂L/∂h0, and ``d`` (T, B, 3H),
    d_t = ∂L/∂p_t. ``grad_out`` (T, B, H) and ``grad_hn`` (B, H) come from outside."""
    T, B, H = grad_out.shape
    g = grad_out.new_empty(T + 1, B, H)
    d = grad_out.new_empty(T, B, 3 * H)
    torch.add(grad_out[T - 1], grad_hn, out=g[T])
    g_t, d_t, d_flat = g.unbind(0), d.view(T, B, 3, H).unbind(0), d.unbind(0)
    f_t, z_t, out_t = factors[:, :, :3].unbind(0), z.unbind(0), grad_out.unbind(0)
    for t in range(T - 1, -1, -1):
        torch.mul(g_t[t + 1].unsqueeze(1), f_t[t], out=d_t[t])
        if t > 0:
            torch.addcmul(out_t[t - 1], g_t[t + 1], z_t[t], out=g_t[t])
        else:
            torch.mul(g_t[t + 1], z_t[t], out=g_t[t])
        g_t[t].addmm_(d_flat[t], w_hh)
    return g, d


class GRULayerFunction(torch.autograd.Function):
    """``(x_proj (T, B, 3H), h0 (B, H), w_hh (3H, H), b_hh (3H,) | None, relu, ops)
    -> (output (T, B, H), h_n (B, H))``; ``ops`` is the compiled extension or None for the
    PyTorch loops."""

    @staticmethod
    def forward(ctx, x_proj, h0, w_hh, b_hh, relu, ops):  # noqa: ANN001, ANN205
        ctx.relu, ctx.ops, ctx.has_bias = relu, ops, b_hh is not None
        # The states are saved in a buffer of their own, apart from the returned output, which
        # the caller may then modify in place (as nn.GRU's).
        if ops is not None:
            out, states, factors = ops.forward(x_proj, h0, w_hh, b_hh, relu, True)
            ctx.save_for_backward(h0, states, factors, w_hh)
        else:
            states, p, rz, n = _forward_loop(x_proj, h0, w_hh, b_hh, relu)
            ctx.save_for_backward(h0, states, p, rz, n, w_hh)
            out = states.clone()
        return out, states[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_hn):  # noqa: ANN001, ANN205
        if ctx.ops is not None:
            h0, states, factors, w_hh = ctx.saved_tensors
            grad_x, grad_h0, grad_w, grad_b = ctx.ops.backward(
                grad_out, grad_hn, h0, states, factors, w_hh, ctx.has_bias
            )
            return grad_x, grad_h0, grad_w, grad_b if ctx.has_bias else None, None, None
        h0, states, p, rz, n, w_hh = ctx.saved_tensors
        T, B, H = n.shape
        h_prev = torch.cat([h0.unsqueeze(0), states[:-1]])  # (T, B, H): h_{t-1}
        factors = _backward_factors(h_prev, p, rz, n, ctx.relu)
        g, d = _backward_loop(grad_out.contiguous(), grad_hn, factors, rz[..., H:], w_hh)
        grad_w = d.view(T * B, 3 * H).t().mm(h_prev.view(T * B, H))  # Σ_t d_tᵀ h_{t-1}
        grad_b = d.sum((0, 1)) if ctx.has_bias else None
        # ∂L/∂x_t equals d_t except in the n block, a_n = g_t ⊙ A_t (d's is a_n ⊙ r): reuse d.
        torch.mul(g[1:], factors[:, :, 3], out=d.view(T, B, 3, H)[:, :, 2])
        return d, g[0], grad_w, grad_b, None, None


def extension_for(backend: str, x_proj: Tensor) -> object | None:
    """The compiled ops when ``backend`` runs them for this tensor (CPU, float32/64), else None;
    ``cpp`` raises where they cannot run."""
    if backend not in ("auto", "cpp"):
        return None
    suitable = x_proj.device.type == "cpu" and x_proj.dtype in (torch.float32, torch.float64)
    if backend == "cpp" and not suitable:
        raise ValueError(
            f"CustomGRU backend 'cpp' runs float32/float64 CPU tensors only, got "
            f"{x_proj.dtype} on {x_proj.device}; use backend 'auto' or 'python'"
        )
    if not suitable:
        return None
    ops = load_extension()
    if ops is None and backend == "cpp":
        raise RuntimeError(
            "CustomGRU backend 'cpp': the compiled GRU loops are not available "
            "(GRUBENCH_GRU_EXT=0, or the build failed: see the warning above)"
        )
    return ops


def gru_layer(
    x_proj: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None, relu: bool, backend: str
) -> tuple[Tensor, Tensor]:
    """Runs one reset-after GRU layer; returns ``output`` (T, B, H) and ``h_n`` (B, H).

    ``backend`` is ``auto``, ``cpp`` or ``python`` (see ``BACKENDS``)."""
    ops = extension_for(backend, x_proj)
    tensors = (x_proj, h0, w_hh) if b_hh is None else (x_proj, h0, w_hh, b_hh)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return GRULayerFunction.apply(x_proj, h0, w_hh, b_hh, relu, ops)
    if ops is not None:  # inference: no factors to keep
        out = ops.forward(x_proj, h0, w_hh, b_hh, relu, False)[0]
    else:
        out = _forward_loop(x_proj, h0, w_hh, b_hh, relu)[0]
    return out, out[-1]


@contextmanager
def subnormals_flushed(on: bool = True) -> Iterator[None]:
    """Flush subnormal floats to zero (below 1.2e-38 in float32) in every CPU thread, then
    restore the default. CPU arithmetic on subnormals is many times slower; they arise where
    gradients shrink through time, as on the adding problem, where the loss reads the last
    step only. ``torch.set_flush_denormal`` sets the calling thread; the compiled loops, where
    built, give the mode to every thread of the intra-op pool (which MKL's matmuls share)."""
    if not on:
        yield
        return
    if not torch.set_flush_denormal(True):
        warnings.warn("this CPU cannot flush subnormal floats; running without", stacklevel=3)
        yield
        return
    ops = load_extension()
    if ops is not None:
        ops.sync_denormal_mode()
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        if ops is not None:
            ops.sync_denormal_mode()

// One reset-after GRU layer: forward loop and hand-written backward through time, with the
// pointwise work of each step fused into one vectorized pass (at::vec::Vectorized, which
// calls the same SLEEF kernels as ATen's own sigmoid and tanh). The math is written out in
// grubench/models/gru_bptt.py, whose pure-PyTorch loops compute the same thing.
//
// Registered as torch.ops.grubench_gru.forward / torch.ops.grubench_gru.backward; built by
// grubench.models.gru_bptt with torch.utils.cpp_extension at first use.
#include <ATen/Dispatch.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <tuple>

#include "engine.h"

namespace {

using at::Tensor;

// factors: per step (B, 5, H) blocks [F_r, F_z, F_n, A, z] (see gru_bptt.py):
//   ∂L/∂p_t = g_t ⊙ [F_r, F_z, F_n],  ∂L/∂(x_n)_t = g_t ⊙ A,  ∂L/∂h_{t-1} ⊃ g_t ⊙ z.
constexpr int64_t kFactors = 5;

using grubench::denormal_mode;
using grubench::for_row_blocks;
using grubench::pooled_empty;

void sync_denormal_mode() {
  const unsigned mode = denormal_mode();
  const int64_t threads = at::get_num_threads();
  // One index per thread: at::parallel_for gives each thread of the team one chunk.
  at::parallel_for(0, threads, 1, [mode](int64_t, int64_t) { grubench::set_denormal_mode(mode); });
}

template <typename scalar_t>
void forward_step(const scalar_t* x, const scalar_t* p, const scalar_t* h_prev, scalar_t* h,
                  scalar_t* h_copy, scalar_t* f, int64_t b0, int64_t b1, int64_t H, bool relu, bool need_grad) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec one(1), zero(0);
  const int64_t W = Vec::size();
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t* xb = x + b * 3 * H;
    const scalar_t* pb = p + b * 3 * H;
    const scalar_t* hpb = h_prev + b * H;
    scalar_t* hb = h + b * H;
    scalar_t* fb = f + b * kFactors * H;
    for (int64_t j = 0; j < H; j += W) {
      const int64_t c = std::min(W, H - j);
      auto load = [c](const scalar_t* ptr) { return Vec::loadu(ptr, c); };
      const Vec pn = load(pb + 2 * H + j);
      const Vec r = (one + (load(xb + j) + load(pb + j)).neg().exp()).reciprocal();
      const Vec z = (one + (load(xb + H + j) + load(pb + H + j)).neg().exp()).reciprocal();
      const Vec pre = load(xb + 2 * H + j) + r * pn;
      const Vec n = relu ? at::vec::maximum(pre, zero) : pre.tanh();
      const Vec hp = load(hpb + j);
      const Vec diff = hp - n;
      const Vec h_new = n + z * diff;  // (h − n) z + n, nn.GRU's order of operations
      h_new.store(hb + j, c);
      if (need_grad) {
        h_new.store(h_copy + b * H + j, c);
        const Vec d_act = relu ? n.gt(zero) : one - n * n;
        const Vec a = d_act * (one - z);
        (a * pn * r * (one - r)).store(fb + j, c);
        (diff * z * (one - z)).store(fb + H + j, c);
        (a * r).store(fb + 2 * H + j, c);
        a.store(fb + 3 * H + j, c);
        z.store(fb + 4 * H + j, c);
      }
    }
  }
}

// One backward step for rows [b0, b1). grad_prev: ∂L/∂h_{t-1} from outside (the output's
// gradient at t−1), or nullptr at t = 0. step_sum (3H) receives Σ_b d_t[b], the step's share
// of the bias gradient, summed while d is in registers.
template <typename scalar_t>
void backward_step(const scalar_t* g, const scalar_t* f, const scalar_t* grad_prev,
                   scalar_t* d, scalar_t* gx, scalar_t* g_prev, scalar_t* step_sum,
                   int64_t b0, int64_t b1, int64_t H) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const int64_t W = Vec::size();
  std::fill(step_sum, step_sum + 3 * H, scalar_t(0));
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t* gb = g + b * H;
    const scalar_t* fb = f + b * kFactors * H;
    scalar_t* db = d + b * 3 * H;
    scalar_t* gxb = gx + b * 3 * H;
    for (int64_t j = 0; j < H; j += W) {
      const int64_t c = std::min(W, H - j);
      auto load = [c](const scalar_t* ptr) { return Vec::loadu(ptr, c); };
      auto accumulate = [c](scalar_t* ptr, const Vec& v) {
        (Vec::loadu(ptr, c) + v).store(ptr, c);
      };
      const Vec gv = load(gb + j);
      const Vec d_r = gv * load(fb + j);
      const Vec d_z = gv * load(fb + H + j);
      const Vec d_n = gv * load(fb + 2 * H + j);
      d_r.store(db + j, c);
      d_z.store(db + H + j, c);
      d_n.store(db + 2 * H + j, c);
      accumulate(step_sum + j, d_r);
      accumulate(step_sum + H + j, d_z);
      accumulate(step_sum + 2 * H + j, d_n);
      d_r.store(gxb + j, c);
      d_z.store(gxb + H + j, c);
      (gv * load(fb + 3 * H + j)).store(gxb + 2 * H + j, c);
      const Vec carried = gv * load(fb + 4 * H + j);
      (grad_prev ? load(grad_prev + b * H + j) + carried : carried).store(g_prev + b * H + j, c);
    }
  }
}

void check_inputs(const Tensor& x_proj, const Tensor& h0, const Tensor& w_hh) {
  TORCH_CHECK(x_proj.device().is_cpu(), "grubench_gru: CPU tensors only");
  TORCH_CHECK(x_proj.dim() == 3 && h0.dim() == 2 && w_hh.dim() == 2, "grubench_gru: bad ranks");
  TORCH_CHECK(x_proj.size(2) == 3 * h0.size(1) && w_hh.size(0) == 3 * h0.size(1) &&
                  w_hh.size(1) == h0.size(1) && x_proj.size(1) == h0.size(0),
              "grubench_gru: inconsistent shapes");
}

// Returns the output (T, B, H), out[t] = h_t; when need_grad also the same states in a second
// buffer kept for the backward (so that the caller may modify the output in place, as
// nn.GRU's allows) and the backward factors (T, B, 5, H); else the output twice and an
// empty tensor.
std::tuple<Tensor, Tensor, Tensor> gru_forward(const Tensor& x_proj_in, const Tensor& h0,
                                       const Tensor& w_hh, const std::optional<Tensor>& b_hh,
                                       bool relu, bool need_grad) {
  check_inputs(x_proj_in, h0, w_hh);
  const Tensor x_proj = x_proj_in.contiguous();
  const int64_t T = x_proj.size(0), B = x_proj.size(1), H = h0.size(1);
  const Tensor h0c = h0.contiguous();
  Tensor states = pooled_empty({T, B, H}, x_proj.options());
  Tensor out = need_grad ? pooled_empty({T, B, H}, x_proj.options()) : states;
  Tensor factors = need_grad ? pooled_empty({T, B, kFactors, H}, x_proj.options())
                             : at::empty({0}, x_proj.options());
  Tensor p = at::empty({B, 3 * H}, x_proj.options());  // workspace, reused every step
  // Detached: the loops run in at::parallel_for's worker threads, where grad mode is the
  // thread's own (on), so ops on the parameters themselves would try to record a graph.
  const Tensor w = w_hh.detach().contiguous();
  const bool has_bias = b_hh.has_value() && b_hh->defined();
  const Tensor bias = has_bias ? b_hh->detach().contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "grubench_gru_forward", [&] {
    const scalar_t* x_ptr = x_proj.const_data_ptr<scalar_t>();
    scalar_t* p_ptr = p.data_ptr<scalar_t>();
    const scalar_t* h0_ptr = h0c.const_data_ptr<scalar_t>();
    const scalar_t* w_ptr = w.const_data_ptr<scalar_t>();
    const scalar_t* bias_ptr = has_bias ? bias.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* states_ptr = states.data_ptr<scalar_t>();
    scalar_t* out_ptr = out.data_ptr<scalar_t>();
    scalar_t* f_ptr = need_grad ? factors.data_ptr<scalar_t>() : nullptr;
    for_row_blocks(B, [&](int64_t b0, int64_t b1) {
      for (int64_t t = 0; t < T; ++t) {
        const scalar_t* h_prev = t == 0 ? h0_ptr : states_ptr + (t - 1) * B * H;
        grubench::project(p_ptr + b0 * 3 * H, bias_ptr, h_prev + b0 * H, w_ptr, b1 - b0, 3 * H, H);
        forward_step<scalar_t>(x_ptr + t * B * 3 * H, p_ptr, h_prev, states_ptr + t * B * H,
                               out_ptr + t * B * H,
                               need_grad ? f_ptr + t * B * kFactors * H : nullptr, b0, b1, H,
                               relu, need_grad);
      }
    });
  });
  return {out, states, factors};
}

// grad_out (T, B, H) and grad_hn (B, H): ∂L/∂output and ∂L/∂h_n from outside.
// Returns (∂L/∂x_proj, ∂L/∂h0, ∂L/∂W_hh, ∂L/∂b_hh).
std::tuple<Tensor, Tensor, Tensor, Tensor> gru_backward(const Tensor& grad_out_in,
                                                        const Tensor& grad_hn,
                                                        const Tensor& h0, const Tensor& states,
                                                        const Tensor& factors,
                                                        const Tensor& w_hh, bool has_bias) {
  const Tensor grad_out = grad_out_in.contiguous();
  const int64_t T = factors.size(0), B = factors.size(1), H = factors.size(3);
  Tensor d = pooled_empty({T, B, 3 * H}, grad_out.options());       // ∂L/∂p_t
  Tensor grad_x = pooled_empty({T, B, 3 * H}, grad_out.options());  // ∂L/∂x_t
  // ∂L/∂h_t walking back, in two buffers used in turn: step k = T−1−t reads one, writes the
  // other, so after T steps the result (∂L/∂h0) is in g_even when T is even.
  Tensor g_even = grad_out[T - 1] + grad_hn;
  Tensor g_odd = at::empty({B, H}, grad_out.options());
  const Tensor w = w_hh.detach().contiguous();
  // The bias gradient Σ_t Σ_b d_t[b]: per step in the working precision (B terms), across
  // steps in double, then summed over the threads' row blocks.
  Tensor grad_b_acc = at::zeros({3 * H}, grad_out.options().dtype(at::kDouble));
  std::mutex grad_b_mutex;
  AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "grubench_gru_backward", [&] {
    const scalar_t* f_ptr = factors.const_data_ptr<scalar_t>();
    const scalar_t* grad_out_ptr = grad_out.const_data_ptr<scalar_t>();
    scalar_t* d_ptr = d.data_ptr<scalar_t>();
    scalar_t* gx_ptr = grad_x.data_ptr<scalar_t>();
    scalar_t* even_ptr = g_even.data_ptr<scalar_t>();
    scalar_t* odd_ptr = g_odd.data_ptr<scalar_t>();
    const scalar_t* w_ptr = w.const_data_ptr<scalar_t>();
    for_row_blocks(B, [&](int64_t b0, int64_t b1) {
      std::vector<scalar_t> step_sum(3 * H);
      std::vector<double> bias_sum(3 * H, 0.0);
      for (int64_t t = T - 1; t >= 0; --t) {
        const bool even = (T - 1 - t) % 2 == 0;
        backward_step<scalar_t>(even ? even_ptr : odd_ptr, f_ptr + t * B * kFactors * H,
                                t > 0 ? grad_out_ptr + (t - 1) * B * H : nullptr,
                                d_ptr + t * B * 3 * H, gx_ptr + t * B * 3 * H,
                                even ? odd_ptr : even_ptr, step_sum.data(), b0, b1, H);
        for (int64_t k = 0; k < 3 * H; ++k) {
          bias_sum[k] += step_sum[k];
        }
        // g_{t-1} += d_t W_h
        grubench::carry_back((even ? odd_ptr : even_ptr) + b0 * H, d_ptr + t * B * 3 * H + b0 * 3 * H,
                             w_ptr, b1 - b0, 3 * H, H);
      }
      const std::lock_guard<std::mutex> lock(grad_b_mutex);
      double* acc = grad_b_acc.data_ptr<double>();
      for (int64_t k = 0; k < 3 * H; ++k) {
        acc[k] += bias_sum[k];
      }
    });
  });
  Tensor g = T % 2 == 0 ? g_even : g_odd;
  Tensor grad_w = grubench::recurrent_weight_grad(d, states, h0);  // Σ_t d_tᵀ h_{t-1}
  Tensor grad_b = has_bias ? grad_b_acc.to(grad_out.scalar_type()) : Tensor();
  return {grad_x, g, grad_w, grad_b};
}

}  // namespace

TORCH_LIBRARY(grubench_gru, m) {
  m.def("forward(Tensor x_proj, Tensor h0, Tensor w_hh, Tensor? b_hh, bool relu, bool need_grad)"
        " -> (Tensor, Tensor, Tensor)");
  m.def("backward(Tensor grad_out, Tensor grad_hn, Tensor h0, Tensor states, Tensor factors, "
        "Tensor w_hh, bool has_bias)"
        " -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("sync_denormal_mode", &sync_denormal_mode);  // no tensors: one kernel for all
}

TORCH_LIBRARY_IMPL(grubench_gru, CPU, m) {
  m.impl("forward", &gru_forward);
  m.impl("backward", &gru_backward);
}

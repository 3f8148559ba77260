// The first-order linear recurrence of minGRU and minLSTM, h_t = a_t ⊙ h_{t-1} + b_t, as a
// sequential loop vectorized over the hidden units (the rows of a batch run in parallel), and
// its backward, the same recurrence reversed:
//   g_t = ∂L/∂out_t + a_{t+1} ⊙ g_{t+1},  ∂L/∂b_t = g_t,  ∂L/∂a_t = g_t ⊙ h_{t-1},
//   ∂L/∂h_0 = a_1 ⊙ g_1.
// Every tensor is batch-first, (B, T, H) (h0: (B, H)). Registered as
// torch.ops.grubench_rnn.linear_scan_forward / linear_scan_backward.
#include <ATen/Dispatch.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <tuple>

#include "engine.h"

namespace {

using at::Tensor;

// Rows per parallel chunk: enough elements that a chunk outweighs the thread hand-off.
int64_t grain_rows(int64_t T, int64_t H) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, T * H)); }

Tensor linear_scan_forward(const Tensor& a_in, const Tensor& b_in, const Tensor& h0_in) {
  TORCH_CHECK(a_in.device().is_cpu(), "grubench_rnn.linear_scan_forward: CPU tensors only");
  TORCH_CHECK(a_in.dim() == 3 && a_in.sizes() == b_in.sizes() && h0_in.dim() == 2 &&
                  h0_in.size(0) == a_in.size(0) && h0_in.size(1) == a_in.size(2),
              "grubench_rnn.linear_scan_forward: a, b (B, T, H) and h0 (B, H) expected");
  const Tensor a = a_in.contiguous(), b = b_in.contiguous(), h0 = h0_in.contiguous();
  const int64_t B = a.size(0), T = a.size(1), H = a.size(2);
  Tensor h = grubench::pooled_empty({B, T, H}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "grubench_linear_scan_forward", [&] {
    using Vec = at::vec::Vectorized<scalar_t>;
    const scalar_t* a_ptr = a.const_data_ptr<scalar_t>();
    const scalar_t* b_ptr = b.const_data_ptr<scalar_t>();
    const scalar_t* h0_ptr = h0.const_data_ptr<scalar_t>();
    scalar_t* h_ptr = h.data_ptr<scalar_t>();
    const unsigned fp = grubench::denormal_mode();
    at::parallel_for(0, B, grain_rows(T, H), [&](int64_t r0, int64_t r1) {
      grubench::set_denormal_mode(fp);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t j = 0; j < H; j += Vec::size()) {
          const int64_t n = std::min<int64_t>(Vec::size(), H - j);
          Vec state = Vec::loadu(h0_ptr + r * H + j, n);  // stays in a register over time
          for (int64_t t = 0; t < T; ++t) {
            const int64_t at = (r * T + t) * H + j;
            state = at::vec::fmadd(Vec::loadu(a_ptr + at, n), state, Vec::loadu(b_ptr + at, n));
            state.store(h_ptr + at, n);
          }
        }
      }
    });
  });
  return h;
}

// Returns (∂L/∂a, ∂L/∂b, ∂L/∂h0) from grad_out (B, T, H), a, the outputs h and h0.
std::tuple<Tensor, Tensor, Tensor> linear_scan_backward(const Tensor& grad_out_in,
                                                        const Tensor& a_in, const Tensor& h_in,
                                                        const Tensor& h0_in) {
  const Tensor go = grad_out_in.contiguous(), a = a_in.contiguous(), h = h_in.contiguous();
  const Tensor h0 = h0_in.contiguous();
  const int64_t B = a.size(0), T = a.size(1), H = a.size(2);
  Tensor grad_a = grubench::pooled_empty(a.sizes(), a.options());
  Tensor grad_b = grubench::pooled_empty(a.sizes(), a.options());
  Tensor grad_h0 = at::empty_like(h0);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "grubench_linear_scan_backward", [&] {
    using Vec = at::vec::Vectorized<scalar_t>;
    const scalar_t* go_ptr = go.const_data_ptr<scalar_t>();
    const scalar_t* a_ptr = a.const_data_ptr<scalar_t>();
    const scalar_t* h_ptr = h.const_data_ptr<scalar_t>();
    const scalar_t* h0_ptr = h0.const_data_ptr<scalar_t>();
    scalar_t* ga_ptr = grad_a.data_ptr<scalar_t>();
    scalar_t* gb_ptr = grad_b.data_ptr<scalar_t>();
    scalar_t* gh0_ptr = grad_h0.data_ptr<scalar_t>();
    const unsigned fp = grubench::denormal_mode();
    at::parallel_for(0, B, grain_rows(T, H), [&](int64_t r0, int64_t r1) {
      grubench::set_denormal_mode(fp);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t j = 0; j < H; j += Vec::size()) {
          const int64_t n = std::min<int64_t>(Vec::size(), H - j);
          Vec carried(0);  // a_{t+1} ⊙ g_{t+1}
          for (int64_t t = T - 1; t >= 0; --t) {
            const int64_t at = (r * T + t) * H + j;
            const Vec g = Vec::loadu(go_ptr + at, n) + carried;
            g.store(gb_ptr + at, n);
            const Vec h_prev = t > 0 ? Vec::loadu(h_ptr + at - H, n) : Vec::loadu(h0_ptr + r * H + j, n);
            (g * h_prev).store(ga_ptr + at, n);
            carried = Vec::loadu(a_ptr + at, n) * g;
          }
          carried.store(gh0_ptr + r * H + j, n);
        }
      }
    });
  });
  return {grad_a, grad_b, grad_h0};
}


// minGRU and minLSTM with their coefficients fused into the loop: from the pre-activations
// pre (B, T, G·H) (blocks z, h for minGRU; f, i, h for minLSTM, see min_rnns.py) and h0 (B, H)
// to h (B, T, H); the backward recomputes the gates from pre instead of keeping them.
//   minGRU:  a = 1 − σ(k_z),  b = σ(k_z) g(k_h)
//   minLSTM: a = f / (f + i), b = i / (f + i) g(k_h),  f = σ(k_f), i = σ(k_i)
//   g(x) = x + 0.5 (x ≥ 0), σ(x) (x < 0)
template <typename Vec>
Vec sigmoid(const Vec& x) {
  return (Vec(1) + x.neg().exp()).reciprocal();
}

template <typename Vec>
void candidate(const Vec& k, Vec& value, Vec& slope) {
  const Vec s = sigmoid(k);
  const Vec positive = k >= Vec(0);
  value = Vec::blendv(s, k + Vec(0.5), positive);
  slope = Vec::blendv(s * (Vec(1) - s), Vec(1), positive);
}

Tensor min_rnn_forward(const Tensor& pre_in, const Tensor& h0_in, bool lstm) {
  const Tensor pre = pre_in.contiguous(), h0 = h0_in.contiguous();
  const int64_t G = lstm ? 3 : 2;
  TORCH_CHECK(pre.device().is_cpu() && pre.dim() == 3 && h0.dim() == 2 &&
                  pre.size(0) == h0.size(0) && pre.size(2) == G * h0.size(1),
              "grubench_rnn.min_rnn_forward: pre (B, T, G·H) and h0 (B, H) expected");
  const int64_t B = pre.size(0), T = pre.size(1), H = h0.size(1);
  Tensor h = grubench::pooled_empty({B, T, H}, pre.options());
  AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "grubench_min_rnn_forward", [&] {
    using Vec = at::vec::Vectorized<scalar_t>;
    const scalar_t* k_ptr = pre.const_data_ptr<scalar_t>();
    const scalar_t* h0_ptr = h0.const_data_ptr<scalar_t>();
    scalar_t* h_ptr = h.data_ptr<scalar_t>();
    const unsigned fp = grubench::denormal_mode();
    at::parallel_for(0, B, grain_rows(T, G * H), [&](int64_t r0, int64_t r1) {
      grubench::set_denormal_mode(fp);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t j = 0; j < H; j += Vec::size()) {
          const int64_t n = std::min<int64_t>(Vec::size(), H - j);
          Vec state = Vec::loadu(h0_ptr + r * H + j, n);
          for (int64_t t = 0; t < T; ++t) {
            const scalar_t* k = k_ptr + (r * T + t) * G * H + j;
            Vec value, slope;
            candidate(Vec::loadu(k + (G - 1) * H, n), value, slope);
            if (lstm) {
              const Vec f = sigmoid(Vec::loadu(k, n)), i = sigmoid(Vec::loadu(k + H, n));
              const Vec total = f + i;
              state = (f * state + i * value) / total;
            } else {
              const Vec z = sigmoid(Vec::loadu(k, n));
              state = state + z * (value - state);  // (1 − z) h + z h̃
            }
            state.store(h_ptr + (r * T + t) * H + j, n);
          }
        }
      }
    });
  });
  return h;
}

// Returns (∂L/∂pre, ∂L/∂h0) from grad_out (B, T, H), pre, the outputs h and h0.
std::tuple<Tensor, Tensor> min_rnn_backward(const Tensor& grad_out_in, const Tensor& pre_in,
                                            const Tensor& h_in, const Tensor& h0_in, bool lstm) {
  const Tensor go = grad_out_in.contiguous(), pre = pre_in.contiguous(), h = h_in.contiguous();
  const Tensor h0 = h0_in.contiguous();
  const int64_t G = lstm ? 3 : 2;
  const int64_t B = pre.size(0), T = pre.size(1), H = h0.size(1);
  Tensor grad_pre = grubench::pooled_empty(pre.sizes(), pre.options());
  Tensor grad_h0 = at::empty_like(h0);
  AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "grubench_min_rnn_backward", [&] {
    using Vec = at::vec::Vectorized<scalar_t>;
    const scalar_t* go_ptr = go.const_data_ptr<scalar_t>();
    const scalar_t* k_ptr = pre.const_data_ptr<scalar_t>();
    const scalar_t* h_ptr = h.const_data_ptr<scalar_t>();
    const scalar_t* h0_ptr = h0.const_data_ptr<scalar_t>();
    scalar_t* gk_ptr = grad_pre.data_ptr<scalar_t>();
    scalar_t* gh0_ptr = grad_h0.data_ptr<scalar_t>();
    const unsigned fp = grubench::denormal_mode();
    at::parallel_for(0, B, grain_rows(T, G * H), [&](int64_t r0, int64_t r1) {
      grubench::set_denormal_mode(fp);
      const Vec one(1);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t j = 0; j < H; j += Vec::size()) {
          const int64_t n = std::min<int64_t>(Vec::size(), H - j);
          Vec carried(0);  // a_{t+1} ⊙ g_{t+1}
          for (int64_t t = T - 1; t >= 0; --t) {
            const int64_t at = (r * T + t) * H + j;
            const scalar_t* k = k_ptr + (r * T + t) * G * H + j;
            scalar_t* gk = gk_ptr + (r * T + t) * G * H + j;
            const Vec g = Vec::loadu(go_ptr + at, n) + carried;
            const Vec h_prev = t > 0 ? Vec::loadu(h_ptr + at - H, n) : Vec::loadu(h0_ptr + r * H + j, n);
            Vec value, slope;
            candidate(Vec::loadu(k + (G - 1) * H, n), value, slope);
            if (lstm) {
              const Vec f = sigmoid(Vec::loadu(k, n)), i = sigmoid(Vec::loadu(k + H, n));
              const Vec inv = (f + i).reciprocal();
              const Vec a = f * inv, c = i * inv;
              const Vec gap = g * (h_prev - value) * inv * inv;  // (G_a − G_c) / s²
              (gap * i * f * (one - f)).store(gk, n);             // ∂/∂k_f = i (G_a − G_c)/s² f(1−f)
              (gap.neg() * f * i * (one - i)).store(gk + H, n);   // ∂/∂k_i = f (G_c − G_a)/s² i(1−i)
              (g * c * slope).store(gk + 2 * H, n);
              carried = a * g;
            } else {
              const Vec z = sigmoid(Vec::loadu(k, n));
              (g * (value - h_prev) * z * (one - z)).store(gk, n);
              (g * z * slope).store(gk + H, n);
              carried = (one - z) * g;
            }
          }
          carried.store(gh0_ptr + r * H + j, n);
        }
      }
    });
  });
  return {grad_pre, grad_h0};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(grubench_rnn, m) {
  m.def("linear_scan_forward(Tensor a, Tensor b, Tensor h0) -> Tensor");
  m.def("linear_scan_backward(Tensor grad_out, Tensor a, Tensor h, Tensor h0) -> (Tensor, Tensor, "
        "Tensor)");
  m.def("min_rnn_forward(Tensor pre, Tensor h0, bool lstm) -> Tensor");
  m.def("min_rnn_backward(Tensor grad_out, Tensor pre, Tensor h, Tensor h0, bool lstm) -> "
        "(Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(grubench_rnn, CPU, m) {
  m.impl("linear_scan_forward", &linear_scan_forward);
  m.impl("linear_scan_backward", &linear_scan_backward);
  m.impl("min_rnn_forward", &min_rnn_forward);
  m.impl("min_rnn_backward", &min_rnn_backward);
}

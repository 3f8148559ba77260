// One LSTM layer and one vanilla RNN layer (tanh or ReLU): forward loop and hand-written
// backward through time, as the GRU's in gru_bptt.cpp. The input projection x_proj = W_i x + b_i
// (T, B, G·H) comes in precomputed for all steps; the pre-activations are x_proj + W_h h + b_h,
// so ∂L/∂x_proj is the pre-activations' gradient d itself and ∂L/∂b_h its sum (the caller forms
// both, grubench/models/engine.py). Registered as torch.ops.grubench_rnn.*.
//
//   LSTM, gates i, f, g, o (nn.LSTM's order):  c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)
//   backward, with gh = ∂L/∂h_t and gc = ∂L/∂c_t from t+1:
//     gc'  = gc + gh ⊙ o ⊙ (1 − tanh²c_t)
//     d_i = gc' ⊙ g ⊙ i(1−i)   d_f = gc' ⊙ c_{t-1} ⊙ f(1−f)   d_g = gc' ⊙ i ⊙ (1−g²)
//     d_o = gh ⊙ tanh(c_t) ⊙ o(1−o)     ∂L/∂c_{t-1} = gc' ⊙ f    ∂L/∂h_{t-1} ⊃ d W_h
//   RNN:  h_t = act(x_t + W_h h_{t-1} + b_h),  d = gh ⊙ act'(h_t) (1 − h² or [h > 0])
#include <ATen/Dispatch.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <tuple>

#include "engine.h"

namespace {

using at::Tensor;
using grubench::carry_back;
using grubench::for_row_blocks;
using grubench::pooled_empty;
using grubench::project;

constexpr int64_t kLstmSaved = 5;  // per step (B, 5, H): i, f, g, o, tanh(c)

template <typename scalar_t>
void lstm_forward_step(const scalar_t* x, const scalar_t* p, const scalar_t* c_prev,
                       scalar_t* h, scalar_t* c, scalar_t* saved, int64_t b0, int64_t b1,
                       int64_t H) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec one(1);
  const int64_t W = Vec::size();
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t* xb = x + b * 4 * H;
    const scalar_t* pb = p + (b - b0) * 4 * H;  // p holds the block's rows only
    for (int64_t j = 0; j < H; j += W) {
      const int64_t n = std::min(W, H - j);
      auto pre = [&](int64_t gate) {
        return Vec::loadu(xb + gate * H + j, n) + Vec::loadu(pb + gate * H + j, n);
      };
      auto sigmoid = [&](const Vec& v) { return (one + v.neg().exp()).reciprocal(); };
      const Vec i = sigmoid(pre(0)), f = sigmoid(pre(1)), g = pre(2).tanh(), o = sigmoid(pre(3));
      const Vec c_new = f * Vec::loadu(c_prev + b * H + j, n) + i * g;
      const Vec tc = c_new.tanh();
      c_new.store(c + b * H + j, n);
      (o * tc).store(h + b * H + j, n);
      if (saved != nullptr) {
        scalar_t* sb = saved + b * kLstmSaved * H + j;
        i.store(sb, n);
        f.store(sb + H, n);
        g.store(sb + 2 * H, n);
        o.store(sb + 3 * H, n);
        tc.store(sb + 4 * H, n);
      }
    }
  }
}

// gh: ∂L/∂h_t (rows of this block); gc: ∂L/∂c_t in, ∂L/∂c_{t-1} out (in place); d: the step's
// pre-activation gradients; g_prev: receives grad_prev (∂L/∂h_{t-1} from outside, or 0), to
// which the caller adds d W_h.
template <typename scalar_t>
void lstm_backward_step(const scalar_t* gh, scalar_t* gc, const scalar_t* saved,
                        const scalar_t* c_prev, const scalar_t* grad_prev, scalar_t* d,
                        scalar_t* g_prev, int64_t b0, int64_t b1, int64_t H) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec one(1), zero(0);
  const int64_t W = Vec::size();
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t* sb = saved + b * kLstmSaved * H;
    scalar_t* db = d + b * 4 * H;
    for (int64_t j = 0; j < H; j += W) {
      const int64_t n = std::min(W, H - j);
      auto load = [n](const scalar_t* ptr) { return Vec::loadu(ptr, n); };
      const Vec i = load(sb + j), f = load(sb + H + j), g = load(sb + 2 * H + j);
      const Vec o = load(sb + 3 * H + j), tc = load(sb + 4 * H + j);
      const Vec ghv = load(gh + b * H + j);
      const Vec gct = load(gc + b * H + j) + ghv * o * (one - tc * tc);
      (gct * g * i * (one - i)).store(db + j, n);
      (gct * load(c_prev + b * H + j) * f * (one - f)).store(db + H + j, n);
      (gct * i * (one - g * g)).store(db + 2 * H + j, n);
      (ghv * tc * o * (one - o)).store(db + 3 * H + j, n);
      (gct * f).store(gc + b * H + j, n);
      (grad_prev ? load(grad_prev + b * H + j) : zero).store(g_prev + b * H + j, n);
    }
  }
}

void check_shapes(const Tensor& x_proj, const Tensor& h0, const Tensor& w_hh, int64_t gates,
                  const char* what) {
  TORCH_CHECK(x_proj.device().is_cpu(), what, ": CPU tensors only");
  TORCH_CHECK(x_proj.dim() == 3 && h0.dim() == 2 && w_hh.dim() == 2, what, ": bad ranks");
  const int64_t H = h0.size(1);
  TORCH_CHECK(x_proj.size(2) == gates * H && w_hh.size(0) == gates * H && w_hh.size(1) == H &&
                  x_proj.size(1) == h0.size(0),
              what, ": inconsistent shapes");
}

// Returns (out, states, cells, saved): out (T, B, H), out[t] = h_t; states the same values in a
// buffer kept for the backward when need_grad (the caller may modify out in place, as
// nn.LSTM's), else out itself; cells (T, B, H), cells[t] = c_t; saved (T, B, 5, H) when
// need_grad, else empty.
std::tuple<Tensor, Tensor, Tensor, Tensor> lstm_forward(const Tensor& x_proj_in,
                                                        const Tensor& h0_in,
                                                        const Tensor& c0_in, const Tensor& w_hh,
                                                        const std::optional<Tensor>& b_hh,
                                                        bool need_grad) {
  check_shapes(x_proj_in, h0_in, w_hh, 4, "grubench_rnn.lstm_forward");
  const Tensor x_proj = x_proj_in.contiguous(), h0 = h0_in.contiguous(), c0 = c0_in.contiguous();
  const int64_t T = x_proj.size(0), B = x_proj.size(1), H = h0.size(1);
  Tensor states = pooled_empty({T, B, H}, x_proj.options());
  Tensor out = need_grad ? pooled_empty({T, B, H}, x_proj.options()) : states;
  Tensor cells = pooled_empty({T, B, H}, x_proj.options());
  Tensor saved = need_grad ? pooled_empty({T, B, kLstmSaved, H}, x_proj.options())
                           : at::empty({0}, x_proj.options());
  const Tensor w = w_hh.detach().contiguous();
  const bool has_bias = b_hh.has_value() && b_hh->defined();
  const Tensor bias = has_bias ? b_hh->detach().contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "grubench_lstm_forward", [&] {
    const scalar_t* x_ptr = x_proj.const_data_ptr<scalar_t>();
    const scalar_t* w_ptr = w.const_data_ptr<scalar_t>();
    const scalar_t* bias_ptr = has_bias ? bias.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* h_ptr = states.data_ptr<scalar_t>();
    scalar_t* c_ptr = cells.data_ptr<scalar_t>();
    scalar_t* saved_ptr = need_grad ? saved.data_ptr<scalar_t>() : nullptr;
    for_row_blocks(B, [&](int64_t b0, int64_t b1) {
      std::vector<scalar_t> p((b1 - b0) * 4 * H);  // this block's W_h h + b_h, every step
      for (int64_t t = 0; t < T; ++t) {
        const scalar_t* h_prev = t == 0 ? h0.const_data_ptr<scalar_t>() : h_ptr + (t - 1) * B * H;
        const scalar_t* c_prev = t == 0 ? c0.const_data_ptr<scalar_t>() : c_ptr + (t - 1) * B * H;
        project(p.data(), bias_ptr, h_prev + b0 * H, w_ptr, b1 - b0, 4 * H, H);
        lstm_forward_step<scalar_t>(x_ptr + t * B * 4 * H, p.data(), c_prev, h_ptr + t * B * H,
                                    c_ptr + t * B * H,
                                    saved_ptr ? saved_ptr + t * B * kLstmSaved * H : nullptr, b0,
                                    b1, H);
      }
    });
  });
  if (need_grad) {
    out.copy_(states);
  }
  return {out, states, cells, saved};
}

// grad_out (T, B, H), grad_hn, grad_cn (B, H): the gradients from outside. Returns
// (d (T, B, 4H) = ∂L/∂x_proj, ∂L/∂h0, ∂L/∂c0, ∂L/∂W_hh).
std::tuple<Tensor, Tensor, Tensor, Tensor> lstm_backward(const Tensor& grad_out_in,
                                                         const Tensor& grad_hn,
                                                         const Tensor& grad_cn, const Tensor& h0,
                                                         const Tensor& c0, const Tensor& states,
                                                         const Tensor& cells, const Tensor& saved,
                                                         const Tensor& w_hh) {
  const Tensor grad_out = grad_out_in.contiguous();
  const int64_t T = saved.size(0), B = saved.size(1), H = saved.size(3);
  Tensor d = pooled_empty({T, B, 4 * H}, grad_out.options());
  // ∂L/∂h_t walking back in two buffers used in turn (step k = T−1−t reads one, writes the
  // other); ∂L/∂c_t in one, updated in place.
  Tensor g_even = (grad_out[T - 1] + grad_hn).contiguous();
  Tensor g_odd = at::empty({B, H}, grad_out.options());
  Tensor gc = grad_cn.contiguous().clone();
  const Tensor w = w_hh.detach().contiguous();
  const Tensor c0c = c0.contiguous();
  AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "grubench_lstm_backward", [&] {
    const scalar_t* go_ptr = grad_out.const_data_ptr<scalar_t>();
    const scalar_t* saved_ptr = saved.const_data_ptr<scalar_t>();
    const scalar_t* c_ptr = cells.const_data_ptr<scalar_t>();
    const scalar_t* w_ptr = w.const_data_ptr<scalar_t>();
    scalar_t* d_ptr = d.data_ptr<scalar_t>();
    scalar_t* gc_ptr = gc.data_ptr<scalar_t>();
    scalar_t* even_ptr = g_even.data_ptr<scalar_t>();
    scalar_t* odd_ptr = g_odd.data_ptr<scalar_t>();
    for_row_blocks(B, [&](int64_t b0, int64_t b1) {
      for (int64_t t = T - 1; t >= 0; --t) {
        const bool even = (T - 1 - t) % 2 == 0;
        scalar_t* g_prev = even ? odd_ptr : even_ptr;
        scalar_t* d_t = d_ptr + t * B * 4 * H;
        lstm_backward_step<scalar_t>(even ? even_ptr : odd_ptr, gc_ptr,
                                     saved_ptr + t * B * kLstmSaved * H,
                                     t > 0 ? c_ptr + (t - 1) * B * H : c0c.const_data_ptr<scalar_t>(),
                                     t > 0 ? go_ptr + (t - 1) * B * H : nullptr, d_t, g_prev, b0,
                                     b1, H);
        carry_back(g_prev + b0 * H, d_t + b0 * 4 * H, w_ptr, b1 - b0, 4 * H, H);
      }
    });
  });
  Tensor grad_h0 = T % 2 == 0 ? g_even : g_odd;
  return {d, grad_h0, gc, grubench::recurrent_weight_grad(d, states, h0)};
}

template <typename scalar_t>
void rnn_forward_step(const scalar_t* x, const scalar_t* p, scalar_t* h, int64_t b0, int64_t b1,
                      int64_t H, bool relu) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec zero(0);
  const int64_t W = Vec::size();
  for (int64_t b = b0; b < b1; ++b) {
    for (int64_t j = 0; j < H; j += W) {
      const int64_t n = std::min(W, H - j);
      const Vec pre = Vec::loadu(x + b * H + j, n) + Vec::loadu(p + (b - b0) * H + j, n);
      (relu ? at::vec::maximum(pre, zero) : pre.tanh()).store(h + b * H + j, n);
    }
  }
}

template <typename scalar_t>
void rnn_backward_step(const scalar_t* gh, const scalar_t* h, const scalar_t* grad_prev,
                       scalar_t* d, scalar_t* g_prev, int64_t b0, int64_t b1, int64_t H,
                       bool relu) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec one(1), zero(0);
  const int64_t W = Vec::size();
  for (int64_t b = b0; b < b1; ++b) {
    for (int64_t j = 0; j < H; j += W) {
      const int64_t n = std::min(W, H - j);
      const int64_t at = b * H + j;
      const Vec hv = Vec::loadu(h + at, n);
      const Vec slope = relu ? Vec::blendv(zero, one, hv > zero) : one - hv * hv;
      (Vec::loadu(gh + at, n) * slope).store(d + at, n);
      (grad_prev ? Vec::loadu(grad_prev + at, n) : zero).store(g_prev + at, n);
    }
  }
}

// Returns (out, states): out (T, B, H), and the same values in a buffer kept for the backward
// when need_grad (else out itself).
std::tuple<Tensor, Tensor> rnn_forward(const Tensor& x_proj_in, const Tensor& h0_in,
                                       const Tensor& w_hh, const std::optional<Tensor>& b_hh,
                                       bool relu, bool need_grad) {
  check_shapes(x_proj_in, h0_in, w_hh, 1, "grubench_rnn.rnn_forward");
  const Tensor x_proj = x_proj_in.contiguous(), h0 = h0_in.contiguous();
  const int64_t T = x_proj.size(0), B = x_proj.size(1), H = h0.size(1);
  Tensor states = pooled_empty({T, B, H}, x_proj.options());
  const Tensor w = w_hh.detach().contiguous();
  const bool has_bias = b_hh.has_value() && b_hh->defined();
  const Tensor bias = has_bias ? b_hh->detach().contiguous() : Tensor();
  AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "grubench_rnn_forward", [&] {
    const scalar_t* x_ptr = x_proj.const_data_ptr<scalar_t>();
    const scalar_t* w_ptr = w.const_data_ptr<scalar_t>();
    const scalar_t* bias_ptr = has_bias ? bias.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* h_ptr = states.data_ptr<scalar_t>();
    for_row_blocks(B, [&](int64_t b0, int64_t b1) {
      std::vector<scalar_t> p((b1 - b0) * H);
      for (int64_t t = 0; t < T; ++t) {
        const scalar_t* h_prev = t == 0 ? h0.const_data_ptr<scalar_t>() : h_ptr + (t - 1) * B * H;
        project(p.data(), bias_ptr, h_prev + b0 * H, w_ptr, b1 - b0, H, H);
        rnn_forward_step<scalar_t>(x_ptr + t * B * H, p.data(), h_ptr + t * B * H, b0, b1, H,
                                   relu);
      }
    });
  });
  Tensor out = need_grad ? pooled_empty({T, B, H}, x_proj.options()).copy_(states) : states;
  return {out, states};
}

// Returns (d (T, B, H) = ∂L/∂x_proj, ∂L/∂h0, ∂L/∂W_hh).
std::tuple<Tensor, Tensor, Tensor> rnn_backward(const Tensor& grad_out_in, const Tensor& grad_hn,
                                                const Tensor& h0, const Tensor& states,
                                                const Tensor& w_hh, bool relu) {
  const Tensor grad_out = grad_out_in.contiguous();
  const int64_t T = states.size(0), B = states.size(1), H = states.size(2);
  Tensor d = pooled_empty({T, B, H}, grad_out.options());
  Tensor g_even = (grad_out[T - 1] + grad_hn).contiguous();
  Tensor g_odd = at::empty({B, H}, grad_out.options());
  const Tensor w = w_hh.detach().contiguous();
  AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "grubench_rnn_backward", [&] {
    const scalar_t* go_ptr = grad_out.const_data_ptr<scalar_t>();
    const scalar_t* h_ptr = states.const_data_ptr<scalar_t>();
    const scalar_t* w_ptr = w.const_data_ptr<scalar_t>();
    scalar_t* d_ptr = d.data_ptr<scalar_t>();
    scalar_t* even_ptr = g_even.data_ptr<scalar_t>();
    scalar_t* odd_ptr = g_odd.data_ptr<scalar_t>();
    for_row_blocks(B, [&](int64_t b0, int64_t b1) {
      for (int64_t t = T - 1; t >= 0; --t) {
        const bool even = (T - 1 - t) % 2 == 0;
        scalar_t* g_prev = even ? odd_ptr : even_ptr;
        scalar_t* d_t = d_ptr + t * B * H;
        rnn_backward_step<scalar_t>(even ? even_ptr : odd_ptr, h_ptr + t * B * H,
                                    t > 0 ? go_ptr + (t - 1) * B * H : nullptr, d_t, g_prev, b0,
                                    b1, H, relu);
        carry_back(g_prev + b0 * H, d_t + b0 * H, w_ptr, b1 - b0, H, H);
      }
    });
  });
  Tensor grad_h0 = T % 2 == 0 ? g_even : g_odd;
  return {d, grad_h0, grubench::recurrent_weight_grad(d, states, h0)};
}

}  // namespace

TORCH_LIBRARY(grubench_rnn, m) {
  m.def("lstm_forward(Tensor x_proj, Tensor h0, Tensor c0, Tensor w_hh, Tensor? b_hh, "
        "bool need_grad) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("lstm_backward(Tensor grad_out, Tensor grad_hn, Tensor grad_cn, Tensor h0, Tensor c0, "
        "Tensor states, Tensor cells, Tensor saved, Tensor w_hh) -> (Tensor, Tensor, Tensor, "
        "Tensor)");
  m.def("rnn_forward(Tensor x_proj, Tensor h0, Tensor w_hh, Tensor? b_hh, bool relu, "
        "bool need_grad) -> (Tensor, Tensor)");
  m.def("rnn_backward(Tensor grad_out, Tensor grad_hn, Tensor h0, Tensor states, Tensor w_hh, "
        "bool relu) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(grubench_rnn, CPU, m) {
  m.impl("lstm_forward", &lstm_forward);
  m.impl("lstm_backward", &lstm_backward);
  m.impl("rnn_forward", &rnn_forward);
  m.impl("rnn_backward", &rnn_backward);
}

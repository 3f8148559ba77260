// What the compiled recurrent loops share (gru_bptt.cpp, cells.cpp, linear_scan.cpp): a pool of
// large buffers, the subnormal mode of worker threads, the batch-row parallelism, and the
// per-step matmuls called straight into BLAS, without an ATen op dispatch per time step.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <c10/core/InferenceMode.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <mutex>
#include <vector>

// Fortran BLAS as the CPU build of torch exports it (MKL inside libtorch_cpu). Weak, so that a
// build of torch without them still loads this library: the loops then call at::mm_out.
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc) __attribute__((weak));
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b,
            const int* ldb, const double* beta, double* c, const int* ldc) __attribute__((weak));
int MKL_Set_Num_Threads_Local(int threads) __attribute__((weak));  // C API (the lowercase one is Fortran's)
}

namespace grubench {

// Large per-call buffers (states, factors, gradients: T·B·H floats each) come from a pool that
// outlives the call. A fresh tensor of that size is a fresh mmap from glibc, and on this kind of
// VM touching it page by page costs as much as the arithmetic. A pooled buffer is handed out
// again only when the pool holds its last reference (every view, saved tensor or output built
// on it is gone), so reuse can never alias live data.
inline at::Tensor pooled_empty(at::IntArrayRef shape, const at::TensorOptions& options) {
  static std::mutex mutex;
  static std::vector<at::Tensor> pool;
  const int64_t numel = c10::multiply_integers(shape);
  std::lock_guard<std::mutex> lock(mutex);
  // Under torch.inference_mode (Lightning's validation) buffers are inference tensors, which
  // may not be written outside it, and the other way round: each mode reuses its own.
  const bool inference = c10::InferenceMode::is_enabled();
  auto is_free = [inference](const at::Tensor& t) {
    return t.use_count() == 1 && t.storage().use_count() == 1 && t.is_inference() == inference;
  };
  at::Tensor* best = nullptr;
  for (auto& t : pool) {
    if (t.scalar_type() == options.dtype().toScalarType() && t.numel() >= numel && is_free(t) &&
        (best == nullptr || t.numel() < best->numel())) {
      best = &t;
    }
  }
  // A tensor of its own on the pooled storage rather than a view of the pooled tensor, so that
  // autograd treats results built on it as ordinary tensors (in-place ops allowed).
  auto on_storage = [&](const at::Tensor& buffer) {
    return at::empty({0}, options).set_(buffer.storage(), 0, shape, c10::contiguous_strides(shape));
  };
  if (best != nullptr) {
    return on_storage(*best);
  }
  // Free buffers too small for this request would only be outgrown again: drop them, which
  // bounds the pool by the number of buffers alive at once.
  pool.erase(std::remove_if(pool.begin(), pool.end(),
                            [&](const at::Tensor& t) {
                              return is_free(t) && t.scalar_type() ==
                                  options.dtype().toScalarType() && t.numel() < numel;
                            }),
             pool.end());
  pool.push_back(at::empty({numel}, options));
  return on_storage(pool.back());
}

// Subnormal floats (flush-to-zero and denormals-are-zero bits of MXCSR): a per-thread setting,
// so the loops' worker threads take the caller's.
#if defined(__x86_64__) || defined(_M_X64)
constexpr unsigned kSubnormalBits = 0x8040;  // FTZ | DAZ
inline unsigned denormal_mode() { return _mm_getcsr() & kSubnormalBits; }
inline void set_denormal_mode(unsigned bits) {
  _mm_setcsr((_mm_getcsr() & ~kSubnormalBits) | bits);
}
#else
inline unsigned denormal_mode() { return 0; }
inline void set_denormal_mode(unsigned) {}
#endif

// The rows of a batch are independent sequences, so each thread runs the whole time loop on
// its own block of rows (single-threaded matmuls, no synchronization per step: a barrier per
// step costs more than the step's pointwise work, and much more when another process holds a
// core). A block has at least this many rows, so that its matmuls stay efficient.
constexpr int64_t kGrainRows = 16;

// Runs fn(b0, b1) on blocks of batch rows across the intra-op threads. Worker threads start
// with their own thread-local state and floating-point mode: they take the caller's (inference
// mode under Lightning's validation, flushed subnormals), then switch gradients off; BLAS runs
// single-threaded inside a block (the blocks are the parallelism).
template <typename F>
void for_row_blocks(int64_t B, const F& fn) {
  const at::ThreadLocalState caller;
  const unsigned caller_fp = denormal_mode();
  at::parallel_for(0, B, kGrainRows, [&](int64_t b0, int64_t b1) {
    const at::ThreadLocalStateGuard caller_state(caller);
    set_denormal_mode(caller_fp);
    const at::NoGradGuard no_grad;
    const int previous = MKL_Set_Num_Threads_Local ? MKL_Set_Num_Threads_Local(1) : 0;
    fn(b0, b1);
    if (MKL_Set_Num_Threads_Local) {
      MKL_Set_Num_Threads_Local(previous);
    }
  });
}

inline bool have_blas(float*) { return sgemm_ != nullptr; }
inline bool have_blas(double*) { return dgemm_ != nullptr; }
inline void blas_gemm(const char* ta, const char* tb, int m, int n, int k, float alpha,
                      const float* a, int lda, const float* b, int ldb, float beta, float* c,
                      int ldc) {
  sgemm_(ta, tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
}
inline void blas_gemm(const char* ta, const char* tb, int m, int n, int k, double alpha,
                      const double* a, int lda, const double* b, int ldb, double beta, double* c,
                      int ldc) {
  dgemm_(ta, tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
}

// The recurrent projection of rows [b0, b1) at one step, all row-major:
//   p[b0:b1] (rows × N) = bias (N, or nullptr) + h[b0:b1] (rows × K) · Wᵀ,  W (N × K).
// In column-major BLAS terms pᵀ = W_cmᵀ · h_cm (W row-major is Wᵀ column-major).
template <typename scalar_t>
void project(scalar_t* p, const scalar_t* bias, const scalar_t* h, const scalar_t* w, int64_t rows,
             int64_t N, int64_t K) {
  if (bias != nullptr) {
    for (int64_t b = 0; b < rows; ++b) {
      std::copy(bias, bias + N, p + b * N);
    }
  }
  const scalar_t beta = bias != nullptr ? 1 : 0;
  if (have_blas(p)) {
    blas_gemm("T", "N", N, rows, K, scalar_t(1), w, K, h, K, beta, p, N);
    return;
  }
  auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<scalar_t>::value);
  at::Tensor pt = at::from_blob(p, {rows, N}, opts);
  at::Tensor ht = at::from_blob(const_cast<scalar_t*>(h), {rows, K}, opts);
  at::Tensor wt = at::from_blob(const_cast<scalar_t*>(w), {N, K}, opts);
  if (bias != nullptr) {
    pt.addmm_(ht, wt.t());
  } else {
    at::mm_out(pt, ht, wt.t());
  }
}

// The gradient carried to the previous state of rows [b0, b1):
//   g[b0:b1] (rows × K) += d[b0:b1] (rows × N) · W,  W (N × K), all row-major.
template <typename scalar_t>
void carry_back(scalar_t* g, const scalar_t* d, const scalar_t* w, int64_t rows, int64_t N,
                int64_t K) {
  if (have_blas(g)) {
    blas_gemm("N", "N", K, rows, N, scalar_t(1), w, K, d, N, scalar_t(1), g, K);
    return;
  }
  auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<scalar_t>::value);
  at::Tensor gt = at::from_blob(g, {rows, K}, opts);
  at::Tensor dt = at::from_blob(const_cast<scalar_t*>(d), {rows, N}, opts);
  at::Tensor wt = at::from_blob(const_cast<scalar_t*>(w), {N, K}, opts);
  gt.addmm_(dt, wt);
}

// Σ_t d_tᵀ h_{t-1} over all steps: the recurrent weight's gradient (N × K) as one matmul, with
// h_{t-1} = h0 at t = 0 and states[t-1] after. d (T, B, N), states (T, B, K), h0 (B, K).
inline at::Tensor recurrent_weight_grad(const at::Tensor& d, const at::Tensor& states,
                                        const at::Tensor& h0) {
  const int64_t T = d.size(0), B = d.size(1), N = d.size(2), K = states.size(2);
  at::Tensor grad_w = d[0].t().mm(h0.detach());
  if (T > 1) {
    grad_w.addmm_(d.narrow(0, 1, T - 1).reshape({(T - 1) * B, N}).t(),
                  states.narrow(0, 0, T - 1).reshape({(T - 1) * B, K}));
  }
  return grad_w;
}

}  // namespace grubench

// Fused float32 CPU kernels for MindSpore `ops.Custom(func_type="aot")`, built by mindone_ft/kernels/cpu.py.
//
// MindSpore 2.10's CPU backend runs GELU, LayerNorm's gradient and softmax's gradient as chains of slow
// element-wise kernels (profiled: ~25% of a BERT train step, ~7x PyTorch's time for the same work). Each
// function here does one of them in one pass. Every function has MindSpore's AOT signature; inputs come
// first in `params`, then outputs; all are contiguous float32 (a non-float32 call returns 1, an error).
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

// glibc's vector math library (libmvec, erff since 2.35) has SIMD erff/expf; its headers declare them only
// under -ffast-math, which we avoid: it would drop the NaN/inf semantics that overflow detection relies on.
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35) && defined(__x86_64__)
extern "C" {
__attribute__((simd("notinbranch"))) float erff(float) noexcept;
__attribute__((simd("notinbranch"))) float expf(float) noexcept;
}
#endif

namespace {
int g_threads = 1;

int64_t Numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

// Splits [0, n) into at most g_threads contiguous chunks of at least min_chunk items and runs
// fn(chunk, begin, end) on each, chunk 0 on the calling thread. Returns the number of chunks.
template <typename Fn>
int64_t ParallelFor(int64_t n, int64_t min_chunk, Fn fn) {
  int64_t chunks = n / min_chunk < g_threads ? n / min_chunk : g_threads;
  if (chunks <= 1) {
    fn(int64_t{0}, int64_t{0}, n);
    return 1;
  }
  const int64_t step = (n + chunks - 1) / chunks;
  chunks = (n + step - 1) / step;
  std::vector<std::thread> helpers;
  for (int64_t c = 1; c < chunks; ++c) helpers.emplace_back(fn, c, c * step, std::min(n, (c + 1) * step));
  fn(int64_t{0}, int64_t{0}, step);
  for (auto &t : helpers) t.join();
  return chunks;
}

// A tensor viewed as rows of its last axis.
struct RowView {
  int64_t rows, cols;
};
RowView Rows(int ndim, const int64_t *shape) {
  const int64_t cols = shape[ndim - 1];
  return {cols == 0 ? 0 : Numel(ndim, shape) / cols, cols};
}

// out[c] = sum over chunks k of partial[k * cols + c]: the per-thread column sums added up, in chunk order.
void AddChunkSums(const std::vector<float> &partial, int64_t chunks, int64_t cols, float *out) {
  for (int64_t c = 0; c < cols; ++c) {
    float total = 0.0f;
    for (int64_t k = 0; k < chunks; ++k) total += partial[k * cols + c];
    out[c] = total;
  }
}

bool AllFloat32(int nparam, const char **dtypes) {
  for (int i = 0; i < nparam; ++i) if (std::strcmp(dtypes[i], "float32") != 0) return false;
  return true;
}
constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
}  // namespace

extern "C" void SetNumThreads(int n) { g_threads = n > 0 ? n : 1; }

// y = x * 0.5 * (1 + erf(x / sqrt(2)))
extern "C" int GeluForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam != 2 || !AllFloat32(nparam, dtypes)) return 1;
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  ParallelFor(Numel(ndims[0], shapes[0]), 1 << 16, [&](int64_t, int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) y[i] = x[i] * 0.5f * (1.0f + erff(x[i] * kSqrtHalf));
  });
  return 0;
}

// dx = dy * (Phi(x) + x * phi(x))
extern "C" int GeluBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam != 3 || !AllFloat32(nparam, dtypes)) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  ParallelFor(Numel(ndims[0], shapes[0]), 1 << 16, [&](int64_t, int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      float cdf = 0.5f * (1.0f + erff(x[i] * kSqrtHalf));
      float pdf = kInvSqrt2Pi * expf(-0.5f * x[i] * x[i]);
      dx[i] = dy[i] * (cdf + x[i] * pdf);
    }
  });
  return 0;
}

// Softmax over the last axis: inputs x; output y.
extern "C" int SoftmaxForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam != 2 || !AllFloat32(nparam, dtypes)) return 1;
  const float *x = static_cast<const float *>(params[0]);
  float *y = static_cast<float *>(params[1]);
  const RowView view = Rows(ndims[0], shapes[0]);
  const int64_t rows = view.rows, cols = view.cols;
  ParallelFor(rows, 64, [&](int64_t, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float *xr = x + r * cols;
      float *yr = y + r * cols;
      float mx = xr[0];
      for (int64_t c = 1; c < cols; ++c) mx = xr[c] > mx ? xr[c] : mx;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < cols; ++c) { yr[c] = expf(xr[c] - mx); sum += yr[c]; }
      float inv = 1.0f / sum;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
    }
  });
  return 0;
}

// dx = y * (dy - sum(dy * y)) over the last axis: inputs y, dy; output dx.
extern "C" int SoftmaxBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam != 3 || !AllFloat32(nparam, dtypes)) return 1;
  const float *y = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  float *dx = static_cast<float *>(params[2]);
  const RowView view = Rows(ndims[0], shapes[0]);
  const int64_t rows = view.rows, cols = view.cols;
  ParallelFor(rows, 64, [&](int64_t, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float *yr = y + r * cols, *dyr = dy + r * cols;
      float *dxr = dx + r * cols;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < cols; ++c) dot += yr[c] * dyr[c];
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) dxr[c] = yr[c] * (dyr[c] - dot);
    }
  });
  return 0;
}

// LayerNorm over the last axis. Inputs x, gamma, beta, eps (shape [1]); outputs y, mean, rstd (one per row).
extern "C" int LayerNormForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam != 7 || !AllFloat32(nparam, dtypes)) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *beta = static_cast<const float *>(params[2]);
  const float eps = *static_cast<const float *>(params[3]);
  float *y = static_cast<float *>(params[4]);
  float *mean = static_cast<float *>(params[5]);
  float *rstd = static_cast<float *>(params[6]);
  const RowView view = Rows(ndims[0], shapes[0]);
  const int64_t rows = view.rows, cols = view.cols;
  ParallelFor(rows, 16, [&](int64_t, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float *xr = x + r * cols;
      float *yr = y + r * cols;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < cols; ++c) sum += xr[c];
      float mu = sum / cols, sq = 0.0f;
#pragma omp simd reduction(+ : sq)
      for (int64_t c = 0; c < cols; ++c) sq += (xr[c] - mu) * (xr[c] - mu);
      float rs = 1.0f / std::sqrt(sq / cols + eps);
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - mu) * rs * gamma[c] + beta[c];
      mean[r] = mu;
      rstd[r] = rs;
    }
  });
  return 0;
}

// Inputs x, gamma, mean, rstd, dy; outputs dx, dgamma, dbeta.
extern "C" int LayerNormBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam != 8 || !AllFloat32(nparam, dtypes)) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *mean = static_cast<const float *>(params[2]);
  const float *rstd = static_cast<const float *>(params[3]);
  const float *dy = static_cast<const float *>(params[4]);
  float *dx = static_cast<float *>(params[5]);
  float *dgamma = static_cast<float *>(params[6]);
  float *dbeta = static_cast<float *>(params[7]);
  const RowView view = Rows(ndims[0], shapes[0]);
  const int64_t rows = view.rows, cols = view.cols;
  // Each chunk sums its rows' dgamma/dbeta into its own slot; the slots are added at the end.
  std::vector<float> partial_dgamma(cols * g_threads, 0.0f), partial_dbeta(cols * g_threads, 0.0f);
  const int64_t chunks = ParallelFor(rows, 32, [&](int64_t chunk, int64_t b, int64_t e) {
    float *pg = partial_dgamma.data() + cols * chunk, *pb = partial_dbeta.data() + cols * chunk;
    for (int64_t r = b; r < e; ++r) {
      const float *xr = x + r * cols, *dyr = dy + r * cols;
      float *dxr = dx + r * cols;
      const float mu = mean[r], rs = rstd[r];
      float sum_g = 0.0f, sum_gx = 0.0f;
#pragma omp simd reduction(+ : sum_g, sum_gx)
      for (int64_t c = 0; c < cols; ++c) {
        const float xhat = (xr[c] - mu) * rs, g = dyr[c] * gamma[c];
        sum_g += g;
        sum_gx += g * xhat;
        pg[c] += dyr[c] * xhat;
        pb[c] += dyr[c];
      }
      const float mean_g = sum_g / cols, mean_gx = sum_gx / cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) {
        const float xhat = (xr[c] - mu) * rs;
        dxr[c] = rs * (dyr[c] * gamma[c] - mean_g - xhat * mean_gx);
      }
    }
  });
  AddChunkSums(partial_dgamma, chunks, cols, dgamma);
  AddChunkSums(partial_dbeta, chunks, cols, dbeta);
  return 0;
}

// y = x + bias over the last axis: inputs x, bias; output y.
extern "C" int BiasAddForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam != 3 || !AllFloat32(nparam, dtypes)) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *bias = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const RowView view = Rows(ndims[0], shapes[0]);
  const int64_t rows = view.rows, cols = view.cols;
  ParallelFor(rows, 64, [&](int64_t, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = x[r * cols + c] + bias[c];
    }
  });
  return 0;
}

// The bias gradient: sums of dy over every axis but the last. Input dy; output dbias.
extern "C" int SumToLastAxis(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam != 2 || !AllFloat32(nparam, dtypes)) return 1;
  const float *dy = static_cast<const float *>(params[0]);
  float *dbias = static_cast<float *>(params[1]);
  const RowView view = Rows(ndims[0], shapes[0]);
  const int64_t rows = view.rows, cols = view.cols;
  std::vector<float> partial(cols * g_threads, 0.0f);
  const int64_t chunks = ParallelFor(rows, 64, [&](int64_t chunk, int64_t b, int64_t e) {
    float *acc = partial.data() + cols * chunk;
    for (int64_t r = b; r < e; ++r) {
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) acc[c] += dy[r * cols + c];
    }
  });
  AddChunkSums(partial, chunks, cols, dbias);
  return 0;
}

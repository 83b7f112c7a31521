// Fused float32 CPU kernels for MindSpore `ops.Custom(func_type="aot")`, built by mindone_ft/kernels/cpu.py.
//
// MindSpore 2.10's CPU backend runs GELU, LayerNorm's gradient and softmax's gradient as chains of slow
// element-wise kernels (profiled: ~25% of a BERT train step, ~7x PyTorch's time for the same work), and the
// optimizer side of a step (global gradient norm, clipping, AdamW: ~85 ms of a 6-layer BERT step whatever the
// sequence length) as several passes over every parameter. Each function here does one of them in one pass.
// Dropout is here for reproducibility rather than speed (see DropoutMask).
// Every function has MindSpore's AOT signature; inputs come first in `params`, then outputs; all are
// contiguous float32 unless the function says otherwise (a call with other dtypes returns 1, an error).
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <atomic>
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

// y = softmax(x) over one row of `cols` values, the row's max subtracted first; y may be x (in place).
// Returns the row's max and 1 / sum: `SoftmaxRowFromStats` recomputes y from them bit for bit.
struct SoftmaxStats {
  float max, inv_sum;
};
SoftmaxStats SoftmaxRow(const float *x, float *y, int64_t cols) {
  float mx = x[0];
  for (int64_t c = 1; c < cols; ++c) mx = x[c] > mx ? x[c] : mx;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < cols; ++c) { y[c] = expf(x[c] - mx); sum += y[c]; }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) y[c] *= inv;
  return {mx, inv};
}

// SoftmaxRow's y again, from its stats (the same two roundings per value); y may be x.
void SoftmaxRowFromStats(const float *x, float *y, int64_t cols, SoftmaxStats stats) {
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) y[c] = expf(x[c] - stats.max) * stats.inv_sum;
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
    for (int64_t r = b; r < e; ++r) SoftmaxRow(x + r * cols, y + r * cols, cols);
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

// Sum of squares of every element of every input (the squared global gradient norm), in one call: inputs any
// number of float32 tensors; output float32 [1]. The inputs are one index space split between the threads;
// float sums over short blocks (SIMD) are added up in double.
extern "C" int SumOfSquares(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam < 1 || !AllFloat32(nparam, dtypes)) return 1;
  const int inputs = nparam - 1;
  std::vector<int64_t> offsets(inputs + 1, 0);  // input k holds global indices [offsets[k], offsets[k + 1])
  for (int k = 0; k < inputs; ++k) offsets[k + 1] = offsets[k] + Numel(ndims[k], shapes[k]);
  std::vector<double> partial(g_threads, 0.0);
  const int64_t chunks = ParallelFor(offsets[inputs], 1 << 16, [&](int64_t chunk, int64_t b, int64_t e) {
    double sum = 0.0;
    int k = static_cast<int>(std::upper_bound(offsets.begin(), offsets.end(), b) - offsets.begin()) - 1;
    for (int64_t i = b; i < e; ++k) {
      const float *x = static_cast<const float *>(params[k]) - offsets[k];
      const int64_t end = std::min(e, offsets[k + 1]);
      for (; i < end; i += 4096) {
        const int64_t block_end = std::min(end, i + 4096);
        float block_sum = 0.0f;
#pragma omp simd reduction(+ : block_sum)
        for (int64_t j = i; j < block_end; ++j) block_sum += x[j] * x[j];
        sum += block_sum;
      }
      i = end;
    }
    partial[chunk] = sum;
  });
  double total = 0.0;
  for (int64_t c = 0; c < chunks; ++c) total += partial[c];
  *static_cast<float *>(params[inputs]) = static_cast<float>(total);
  return 0;
}

// One step of torch.optim.AdamW on one parameter, in place on param, exp_avg and exp_avg_sq, with the gradient
// first multiplied by grad_scale (the gradient-clipping coefficient). It repeats torch's CPU single-tensor path
// operation by operation in float32 (torch's lerp and addcmul kernels use fused multiply-adds, so do we; the
// file is built with -ffp-contract=off so that nothing else is fused), with the scalars computed in double as
// in torch's Python code: results agree with torch to about one float32 rounding per step.
// Inputs: param, exp_avg, exp_avg_sq, grad (float32, one shape), hyper (float64 [7]: lr, step, grad_scale,
// beta1, beta2, eps, weight_decay). Output: float32 [1], unused (MindSpore ops need an output).
extern "C" int AdamWStep(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam != 6 || !AllFloat32(4, dtypes) || std::strcmp(dtypes[4], "float64") != 0) return 1;
  float *param = static_cast<float *>(params[0]);
  float *exp_avg = static_cast<float *>(params[1]);
  float *exp_avg_sq = static_cast<float *>(params[2]);
  const float *grad = static_cast<const float *>(params[3]);
  const double *hyper = static_cast<const double *>(params[4]);
  const double lr = hyper[0], step = hyper[1], beta1 = hyper[3], beta2 = hyper[4];
  const float scale = static_cast<float>(hyper[2]), eps = static_cast<float>(hyper[5]);
  const float decay = static_cast<float>(1.0 - lr * hyper[6]);
  const float weight1 = static_cast<float>(1.0 - beta1), weight2 = static_cast<float>(1.0 - beta2);
  const float beta2f = static_cast<float>(beta2);
  const float neg_step_size = static_cast<float>(-(lr / (1.0 - std::pow(beta1, step))));
  const float bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(beta2, step)));
  ParallelFor(Numel(ndims[0], shapes[0]), 1 << 15, [&](int64_t, int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      const float g = grad[i] * scale;
      const float m = std::fma(weight1, g - exp_avg[i], exp_avg[i]);   // exp_avg.lerp_(g, 1 - beta1)
      const float v = std::fma(weight2 * g, g, exp_avg_sq[i] * beta2f);  // mul_(beta2).addcmul_(g, g, 1 - beta2)
      const float denom = std::sqrt(v) / bias_correction2_sqrt + eps;
      param[i] = param[i] * decay + neg_step_size * m / denom;
      exp_avg[i] = m;
      exp_avg_sq[i] = v;
    }
  });
  *static_cast<float *>(params[5]) = 0.0f;
  return 0;
}

namespace {
// SplitMix64's output function: a bijective mix of 64 bits (Steele, Lea and Flood 2014).
inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

// The keep decisions of one dropout call: element i is kept when the top 24 bits of
// SplitMix64(key(seed, offset) + (i + 1) * golden) are at least p * 2^24 (see DropoutMask).
struct DropoutStream {
  uint64_t key, threshold;
  DropoutStream(const int64_t *state, float p)
      : key(Mix64(static_cast<uint64_t>(state[0]) ^ Mix64(static_cast<uint64_t>(state[1]) + kGolden))),
        threshold(static_cast<uint64_t>(std::llround(static_cast<double>(p) * (1 << 24)))) {}
  bool Kept(int64_t i) const { return (Mix64(key + static_cast<uint64_t>(i + 1) * kGolden) >> 40) >= threshold; }
};
}  // namespace

// Dropout with a counter-based random stream: element i of call `offset` of a cell seeded `seed` is kept when
// the top 24 bits of SplitMix64(key(seed, offset) + (i + 1) * golden) are at least p * 2^24. The mask depends
// only on (seed, offset, i), not on how the elements are split between threads. (MindSpore 2.10's CPU Dropout
// draws from one generator on all its threads at once, so its masks change from run to run.)
// The mask is drawn apart from its use (DropoutApply below) so that gradient checkpointing can keep the mask
// and recompute the rest: a recomputed draw would advance the stream and give another mask.
// Inputs: x (any dtype; only its shape is read), state (int64 [2]: seed, offset; offset is incremented in
// place, the next call draws a new mask), p (float32 [1]). Output: mask (uint8, 1 = kept, shaped as x).
extern "C" int DropoutMask(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam != 4 || std::strcmp(dtypes[1], "int64") != 0 || std::strcmp(dtypes[2], "float32") != 0 ||
      std::strcmp(dtypes[3], "uint8") != 0 || Numel(ndims[1], shapes[1]) != 2)
    return 1;
  const int64_t *state = static_cast<const int64_t *>(params[1]);
  const float p = *static_cast<const float *>(params[2]);
  uint8_t *mask = static_cast<uint8_t *>(params[3]);
  const DropoutStream stream(state, p);
  ParallelFor(Numel(ndims[0], shapes[0]), 1 << 15, [&](int64_t, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) mask[i] = stream.Kept(i);
  });
  ++static_cast<int64_t *>(params[1])[1];
  return 0;
}

// This call's stream state for kernels that draw their mask themselves (AttentionForward): input state (int64
// [2]: seed, offset), output a copy of it; the input's offset is incremented in place, as DropoutMask does.
extern "C" int DropoutState(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam != 2 || std::strcmp(dtypes[0], "int64") != 0 || std::strcmp(dtypes[1], "int64") != 0 ||
      Numel(ndims[0], shapes[0]) != 2 || Numel(ndims[1], shapes[1]) != 2)
    return 1;
  int64_t *state = static_cast<int64_t *>(params[0]);
  std::copy(state, state + 2, static_cast<int64_t *>(params[1]));
  ++state[1];
  return 0;
}

// y = x * mask / (1 - p): applies a mask (forward) and is also its own gradient (dx = dy * mask / (1 - p)).
// Inputs: x or dy (float32), mask (uint8), p (float32 [1]). Output: float32.
extern "C" int DropoutApply(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam != 4 || std::strcmp(dtypes[0], "float32") != 0 || std::strcmp(dtypes[1], "uint8") != 0 ||
      std::strcmp(dtypes[2], "float32") != 0 || std::strcmp(dtypes[3], "float32") != 0)
    return 1;
  const float *dy = static_cast<const float *>(params[0]);
  const uint8_t *mask = static_cast<const uint8_t *>(params[1]);
  const float scale = 1.0f / (1.0f - *static_cast<const float *>(params[2]));
  float *dx = static_cast<float *>(params[3]);
  ParallelFor(Numel(ndims[0], shapes[0]), 1 << 16, [&](int64_t, int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) dx[i] = mask[i] ? dy[i] * scale : 0.0f;
  });
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Inference kernels for decoding steps (a few tokens per row). MindSpore 2.10's CPU MatMul and BatchMatMul cost
// ~2.5x PyTorch's time on one-token shapes (profiled on a 6-layer Llama decoding step: 1x512 @ 512x1376 takes
// 0.6-0.9 ms; the attention's two BatchMatMuls plus repeat_kv's broadcast ~0.7 ms per layer for 8x1x64 @ 8x64x128):
// most of a step is spent there. These read each weight once, in its stored layout.
// ---------------------------------------------------------------------------------------------------------------

namespace {
// Rows of the weight a thread takes at least: small layers run on the calling thread (a thread start costs more).
int64_t MinWeightRows(int64_t cols) { return std::max<int64_t>(16, (int64_t{1} << 17) / std::max<int64_t>(cols, 1)); }

// y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]) for m < rows, n in [begin, end): four weight rows at a time, each
// read once for every input row while it is in L1.
void DotRows(const float *x, const float *w, const float *bias, float *y, int64_t rows, int64_t k, int64_t n_out,
             int64_t begin, int64_t end) {
  int64_t n = begin;
  for (; n + 4 <= end; n += 4) {
    const float *w0 = w + n * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
    for (int64_t m = 0; m < rows; ++m) {
      const float *xm = x + m * k;
      float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
      for (int64_t i = 0; i < k; ++i) {
        a0 += xm[i] * w0[i];
        a1 += xm[i] * w1[i];
        a2 += xm[i] * w2[i];
        a3 += xm[i] * w3[i];
      }
      float *ym = y + m * n_out + n;
      ym[0] = bias ? a0 + bias[n] : a0;
      ym[1] = bias ? a1 + bias[n + 1] : a1;
      ym[2] = bias ? a2 + bias[n + 2] : a2;
      ym[3] = bias ? a3 + bias[n + 3] : a3;
    }
  }
  for (; n < end; ++n) {
    const float *wn = w + n * k;
    for (int64_t m = 0; m < rows; ++m) {
      const float *xm = x + m * k;
      float a = 0.0f;
#pragma omp simd reduction(+ : a)
      for (int64_t i = 0; i < k; ++i) a += xm[i] * wn[i];
      y[m * n_out + n] = bias ? a + bias[n] : a;
    }
  }
}

// y[m, n] = sum_k x[m, k] * w[k, n] (+ bias[n]) for n in [begin, end): GPT-2's Conv1D layout, one weight row
// added into every output row at a time.
void AxpyRows(const float *x, const float *w, const float *bias, float *y, int64_t rows, int64_t k, int64_t n_out,
              int64_t begin, int64_t end) {
  for (int64_t m = 0; m < rows; ++m) {
    float *ym = y + m * n_out;
#pragma omp simd
    for (int64_t n = begin; n < end; ++n) ym[n] = 0.0f;
  }
  for (int64_t i = 0; i < k; ++i) {
    const float *wi = w + i * n_out;
    for (int64_t m = 0; m < rows; ++m) {
      const float xi = x[m * k + i];
      float *ym = y + m * n_out;
#pragma omp simd
      for (int64_t n = begin; n < end; ++n) ym[n] += xi * wi[n];
    }
  }
  if (bias) {
    for (int64_t m = 0; m < rows; ++m) {
      float *ym = y + m * n_out;
#pragma omp simd
      for (int64_t n = begin; n < end; ++n) ym[n] += bias[n];
    }
  }
}

// Inputs x (..., k), weight ((n, k) or, transposed, (k, n)), bias (n) when has_bias; output y (..., n).
int FewRowsLinear(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, bool has_bias,
                  bool weight_in_out) {
  if (nparam != (has_bias ? 4 : 3) || !AllFloat32(nparam, dtypes) || ndims[1] != 2) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  const float *bias = has_bias ? static_cast<const float *>(params[2]) : nullptr;
  float *y = static_cast<float *>(params[nparam - 1]);
  const RowView view = Rows(ndims[0], shapes[0]);
  const int64_t k = view.cols, n_out = weight_in_out ? shapes[1][1] : shapes[1][0];
  if ((weight_in_out ? shapes[1][0] : shapes[1][1]) != k) return 1;
  ParallelFor(n_out, MinWeightRows(k), [&](int64_t, int64_t b, int64_t e) {
    if (weight_in_out) AxpyRows(x, w, bias, y, view.rows, k, n_out, b, e);
    else DotRows(x, w, bias, y, view.rows, k, n_out, b, e);
  });
  return 0;
}
}  // namespace

// `Linear` (weight (out, in)) on a few rows: inputs x, weight[, bias]; output y.
extern "C" int FewRowsLinear(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  return FewRowsLinear(nparam, params, ndims, shapes, dtypes, false, false);
}
extern "C" int FewRowsLinearBias(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  return FewRowsLinear(nparam, params, ndims, shapes, dtypes, true, false);
}
// GPT-2's `Conv1D` (weight (in, out)) on a few rows: inputs x, weight, bias; output y.
extern "C" int FewRowsConv1D(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  return FewRowsLinear(nparam, params, ndims, shapes, dtypes, true, true);
}

// Attention of a few query tokens over a key/value cache, with grouped key/value heads, in eager attention's
// order: scores = (q . k) * scaling + mask, softmax (max subtracted), context = probs @ v.
// Inputs: query (B, H, S, D), key and value (B, Hkv, C, D) with H a multiple of Hkv (query head h reads key/value
// head h / (H / Hkv), as repeat_kv arranges), mask (Mb, 1, Ms, C) additive, Mb in {1, B}, Ms in {1, S},
// scaling float32 [1]. Outputs: context (B, S, H, D) (heads merged by the caller's reshape), probs (B, H, S, C).
extern "C" int CachedAttention(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (nparam != 7 || !AllFloat32(nparam, dtypes) || ndims[0] != 4 || ndims[1] != 4 || ndims[2] != 4 || ndims[3] != 4)
    return 1;
  const float *q = static_cast<const float *>(params[0]);
  const float *key = static_cast<const float *>(params[1]);
  const float *value = static_cast<const float *>(params[2]);
  const float *mask = static_cast<const float *>(params[3]);
  const float scaling = *static_cast<const float *>(params[4]);
  float *context = static_cast<float *>(params[5]);
  float *probs = static_cast<float *>(params[6]);
  const int64_t batch = shapes[0][0], heads = shapes[0][1], seq = shapes[0][2], dim = shapes[0][3];
  const int64_t kv_heads = shapes[1][1], capacity = shapes[1][2];
  const int64_t mask_batch = shapes[3][0], mask_seq = shapes[3][2];
  if (kv_heads == 0 || heads % kv_heads != 0 || shapes[1][0] != batch || shapes[1][3] != dim ||
      shapes[3][3] != capacity || shapes[3][1] != 1 || (mask_batch != 1 && mask_batch != batch) ||
      (mask_seq != 1 && mask_seq != seq))
    return 1;
  const int64_t groups = heads / kv_heads;
  ParallelFor(batch * heads, 4, [&](int64_t, int64_t b_, int64_t e_) {
    std::vector<float> acc(dim);
    for (int64_t bh = b_; bh < e_; ++bh) {
      const int64_t b = bh / heads, h = bh % heads;
      const float *k_head = key + (b * kv_heads + h / groups) * capacity * dim;
      const float *v_head = value + (b * kv_heads + h / groups) * capacity * dim;
      for (int64_t s = 0; s < seq; ++s) {
        const float *qs = q + (bh * seq + s) * dim;
        const float *mask_row = mask + ((mask_batch == 1 ? 0 : b) * mask_seq + (mask_seq == 1 ? 0 : s)) * capacity;
        float *p = probs + (bh * seq + s) * capacity;
        for (int64_t c = 0; c < capacity; ++c) {
          const float *kc = k_head + c * dim;
          float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
          for (int64_t i = 0; i < dim; ++i) dot += qs[i] * kc[i];
          p[c] = dot * scaling + mask_row[c];
        }
        SoftmaxRow(p, p, capacity);  // the scores' softmax, in place
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int64_t c = 0; c < capacity; ++c) {
          const float pc = p[c];
          const float *vc = v_head + c * dim;
#pragma omp simd
          for (int64_t i = 0; i < dim; ++i) acc[i] += pc * vc[i];
        }
        std::copy(acc.begin(), acc.end(), context + ((b * seq + s) * heads + h) * dim);
      }
    }
  });
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Attention for training and full-sequence inference, in two kernels that never write the (batch, heads, seq,
// keys) scores, probabilities or dropout mask to memory. MindSpore 2.10's CPU graphs keep every intermediate of
// a train step until the step ends, and eager attention makes about nine such tensors per layer (scores, scaled,
// masked, softmax, mask, dropped, and their gradients): ~690 MB of a 6-layer 384-wide BERT step at batch 16 x 128,
// a third of its peak memory (measured). AttentionForward keeps two floats per query row (the softmax's max and
// 1 / sum); AttentionBackward recomputes each block of probabilities from them and redraws the dropout mask from
// its counter-based stream. The products are oneDNN's sgemm (MindSpore's own CPU matmul library), one head and a
// block of query rows at a time, so the scores live in a per-thread buffer that stays in cache.
// Built only with MindSpore's oneDNN (cpu.py passes -DMINDONE_FT_DNNL and links it).
// ---------------------------------------------------------------------------------------------------------------
#ifdef MINDONE_FT_DNNL
extern "C" int dnnl_sgemm(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                          int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

namespace {
// Row-major C = alpha * op(A) op(B) + beta * C on the calling thread: MindSpore's oneDNN is built for a threadpool
// that MindSpore activates only around its own kernels, so here it runs sequentially (our threads split the heads).
bool Gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
          const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
  return dnnl_sgemm(transpose_a ? 'T' : 'N', transpose_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc) == 0;
}

// The operands of both attention kernels: query (B, H, S, D), key and value (B, Hkv, K, D) with H a multiple of
// Hkv (query head h reads key/value head h / (H / Hkv), as repeat_kv arranges), an additive mask (Mb, Mh, Ms, K)
// with Mb in {1, B}, Mh in {1, H}, Ms in {1, S}, the dropout stream state (int64 [2], this call's seed and offset)
// and float32 [scaling, dropout p]. The context is (B, S, H, D), heads merged by the caller's reshape.
// The *BSHD kernels take query (B, S, H, D) and key/value (B, K, Hkv, D) instead, the projections' own layout
// viewed per head (no transposed copies, which a CPU graph would keep until the step ends), and give their
// gradients in that layout.
struct Attention {
  const float *q, *key, *value, *mask;
  const int64_t *state;
  float scaling, p;
  int64_t batch, heads, seq, dim, kv_heads, keys, mask_batch, mask_heads, mask_seq, groups, block_rows;
  bool bshd;
  int64_t q_row, kv_row;  // elements between consecutive rows (tokens) of one head

  explicit Attention(bool bshd_layout) : bshd(bshd_layout) {}

  bool Read(void **params, int *ndims, int64_t **shapes, const char **dtypes) {
    for (int i = 0; i < 4; ++i)
      if (ndims[i] != 4 || std::strcmp(dtypes[i], "float32") != 0) return false;
    if (std::strcmp(dtypes[4], "int64") != 0 || Numel(ndims[4], shapes[4]) != 2 ||
        std::strcmp(dtypes[5], "float32") != 0 || Numel(ndims[5], shapes[5]) != 2)
      return false;
    q = static_cast<const float *>(params[0]);
    key = static_cast<const float *>(params[1]);
    value = static_cast<const float *>(params[2]);
    mask = static_cast<const float *>(params[3]);
    state = static_cast<const int64_t *>(params[4]);
    scaling = static_cast<const float *>(params[5])[0];
    p = static_cast<const float *>(params[5])[1];
    const int head_axis = bshd ? 2 : 1, seq_axis = bshd ? 1 : 2;
    batch = shapes[0][0], heads = shapes[0][head_axis], seq = shapes[0][seq_axis], dim = shapes[0][3];
    kv_heads = shapes[1][head_axis], keys = shapes[1][seq_axis];
    mask_batch = shapes[3][0], mask_heads = shapes[3][1], mask_seq = shapes[3][2];
    for (int i = 1; i < 3; ++i)
      if (shapes[i][0] != batch || shapes[i][head_axis] != kv_heads || shapes[i][seq_axis] != keys ||
          shapes[i][3] != dim)
        return false;
    q_row = bshd ? heads * dim : dim;
    kv_row = bshd ? kv_heads * dim : dim;
    if (kv_heads == 0 || heads % kv_heads != 0 || shapes[3][3] != keys || (mask_batch != 1 && mask_batch != batch) ||
        (mask_heads != 1 && mask_heads != heads) || (mask_seq != 1 && mask_seq != seq) || !(p >= 0.0f && p < 1.0f))
      return false;
    groups = heads / kv_heads;
    // ~64 KB of scores per block: in L2 with the head's keys and values
    block_rows = std::max<int64_t>(1, std::min<int64_t>(seq, (int64_t{1} << 14) / std::max<int64_t>(keys, 1)));
    return true;
  }
  // Offsets of row s of query head (b, h) and of row 0 of its key/value head, in the inputs and in their gradients.
  int64_t QueryOffset(int64_t b, int64_t h, int64_t s) const {
    return bshd ? ((b * seq + s) * heads + h) * dim : ((b * heads + h) * seq + s) * dim;
  }
  int64_t KeyValueOffset(int64_t b, int64_t h) const {
    return bshd ? (b * keys * kv_heads + h / groups) * dim : (b * kv_heads + h / groups) * keys * dim;
  }
  const float *KeyHead(int64_t b, int64_t h) const { return key + KeyValueOffset(b, h); }
  const float *ValueHead(int64_t b, int64_t h) const { return value + KeyValueOffset(b, h); }
  const float *MaskRow(int64_t b, int64_t h, int64_t s) const {
    return mask + (((mask_batch == 1 ? 0 : b) * mask_heads + (mask_heads == 1 ? 0 : h)) * mask_seq +
                   (mask_seq == 1 ? 0 : s)) * keys;
  }
  // scores[r, :] = (q . k) * scaling + mask for query rows [s0, s0 + rows) of head (b, h), as eager attention
  // rounds them (the product, then the scaling, then the mask).
  bool Scores(int64_t b, int64_t h, int64_t s0, int64_t rows, float *scores) const {
    if (!Gemm(false, true, rows, keys, dim, q + QueryOffset(b, h, s0), q_row, KeyHead(b, h), kv_row, 0.0f, scores,
              keys))
      return false;
    for (int64_t r = 0; r < rows; ++r) {
      const float *mask_row = MaskRow(b, h, s0 + r);
      float *row = scores + r * keys;
#pragma omp simd
      for (int64_t c = 0; c < keys; ++c) row[c] = row[c] * scaling + mask_row[c];
    }
    return true;
  }
  // Index of probability (b, h, s, 0) in the (B, H, S, K) tensor eager attention's Dropout draws over.
  int64_t ProbsIndex(int64_t b, int64_t h, int64_t s) const { return ((b * heads + h) * seq + s) * keys; }
};
}  // namespace

extern "C" int HasFusedAttention() { return 1; }

// Inputs: query, key, value, mask, dropout state, [scaling, p] (see Attention). Outputs: context (B, S, H, D) =
// dropout(softmax(scores)) @ value with eager attention's dropout mask for this state, and stats (B, H, S, 2):
// each row's softmax max and 1 / sum.
namespace {
int RunAttentionForward(bool bshd, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  Attention a(bshd);
  if (nparam != 8 || !a.Read(params, ndims, shapes, dtypes) || std::strcmp(dtypes[6], "float32") != 0 ||
      std::strcmp(dtypes[7], "float32") != 0)
    return 1;
  float *context = static_cast<float *>(params[6]);
  float *stats = static_cast<float *>(params[7]);
  const DropoutStream stream(a.state, a.p);
  const float keep_scale = 1.0f / (1.0f - a.p);
  std::atomic<bool> ok{true};
  ParallelFor(a.batch * a.heads, 1, [&](int64_t, int64_t begin, int64_t end) {
    std::vector<float> probs(a.block_rows * a.keys);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / a.heads, h = bh % a.heads;
      for (int64_t s0 = 0; s0 < a.seq; s0 += a.block_rows) {
        const int64_t rows = std::min(a.block_rows, a.seq - s0);
        if (!a.Scores(b, h, s0, rows, probs.data())) { ok = false; return; }
        for (int64_t r = 0; r < rows; ++r) {
          float *row = probs.data() + r * a.keys;
          const SoftmaxStats row_stats = SoftmaxRow(row, row, a.keys);
          stats[(bh * a.seq + s0 + r) * 2] = row_stats.max;
          stats[(bh * a.seq + s0 + r) * 2 + 1] = row_stats.inv_sum;
          if (a.p > 0.0f) {
            const int64_t first = a.ProbsIndex(b, h, s0 + r);
            for (int64_t c = 0; c < a.keys; ++c) row[c] = stream.Kept(first + c) ? row[c] * keep_scale : 0.0f;
          }
        }
        if (!Gemm(false, false, rows, a.dim, a.keys, probs.data(), a.keys, a.ValueHead(b, h), a.kv_row, 0.0f,
                  context + ((b * a.seq + s0) * a.heads + h) * a.dim, a.heads * a.dim)) { ok = false; return; }
      }
    }
  });
  return ok ? 0 : 1;
}
}  // namespace

extern "C" int AttentionForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  return RunAttentionForward(false, nparam, params, ndims, shapes, dtypes);
}
extern "C" int AttentionForwardBSHD(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  return RunAttentionForward(true, nparam, params, ndims, shapes, dtypes);
}

// Inputs: query, key, value, mask, dropout state, [scaling, p] (as given to AttentionForward), its stats, and
// dcontext (B, S, H, D). Outputs: dquery (B, H, S, D), dkey and dvalue (B, Hkv, K, D) (the BSHD kernel: in its
// inputs' layout), summed over each key/value head's query heads. Per block: probs from the stats, dvalue +=
// dropped^T dcontext, dprobs = mask * (dcontext value^T) / (1 - p), dscores = probs * (dprobs - rowsum(dprobs *
// probs)) * scaling, dquery = dscores key, dkey += dscores^T query: eager attention's gradient, in its order of
// roundings up to the sums' order.
namespace {
int RunAttentionBackward(bool bshd, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  Attention a(bshd);
  if (nparam != 11 || !a.Read(params, ndims, shapes, dtypes) || !AllFloat32(nparam - 6, dtypes + 6)) return 1;
  const float *stats = static_cast<const float *>(params[6]);
  const float *dcontext = static_cast<const float *>(params[7]);
  float *dquery = static_cast<float *>(params[8]);
  float *dkey = static_cast<float *>(params[9]);
  float *dvalue = static_cast<float *>(params[10]);
  if (shapes[7][0] != a.batch || shapes[7][1] != a.seq || shapes[7][2] != a.heads || shapes[7][3] != a.dim) return 1;
  const DropoutStream stream(a.state, a.p);
  const float keep_scale = 1.0f / (1.0f - a.p);
  std::atomic<bool> ok{true};
  // One task per key/value head: it owns that head's dkey and dvalue, summed over its group of query heads.
  ParallelFor(a.batch * a.kv_heads, 1, [&](int64_t, int64_t begin, int64_t end) {
    std::vector<float> probs(a.block_rows * a.keys), work(a.block_rows * a.keys);
    std::vector<uint8_t> kept(a.block_rows * a.keys);
    for (int64_t bkv = begin; bkv < end; ++bkv) {
      const int64_t b = bkv / a.kv_heads;
      float *dk = dkey + a.KeyValueOffset(b, (bkv % a.kv_heads) * a.groups);
      float *dv = dvalue + a.KeyValueOffset(b, (bkv % a.kv_heads) * a.groups);
      for (int64_t k = 0; k < a.keys; ++k) {
        std::fill(dk + k * a.kv_row, dk + k * a.kv_row + a.dim, 0.0f);
        std::fill(dv + k * a.kv_row, dv + k * a.kv_row + a.dim, 0.0f);
      }
      for (int64_t h = (bkv % a.kv_heads) * a.groups; h < (bkv % a.kv_heads + 1) * a.groups; ++h) {
        const int64_t bh = b * a.heads + h;
        for (int64_t s0 = 0; s0 < a.seq; s0 += a.block_rows) {
          const int64_t rows = std::min(a.block_rows, a.seq - s0), n = rows * a.keys;
          const float *dcontext_block = dcontext + ((b * a.seq + s0) * a.heads + h) * a.dim;
          if (!a.Scores(b, h, s0, rows, probs.data())) { ok = false; return; }
          for (int64_t r = 0; r < rows; ++r) {
            const float *st = stats + (bh * a.seq + s0 + r) * 2;
            SoftmaxRowFromStats(probs.data() + r * a.keys, probs.data() + r * a.keys, a.keys, {st[0], st[1]});
          }
          const float *dropped = probs.data();
          if (a.p > 0.0f) {
            for (int64_t r = 0; r < rows; ++r) {
              const int64_t first = a.ProbsIndex(b, h, s0 + r);
              for (int64_t c = 0; c < a.keys; ++c) kept[r * a.keys + c] = stream.Kept(first + c);
            }
#pragma omp simd
            for (int64_t i = 0; i < n; ++i) work[i] = kept[i] ? probs[i] * keep_scale : 0.0f;
            dropped = work.data();
          }
          // dvalue += dropped^T dcontext, then work = dcontext value^T (the gradient of the dropped probs)
          if (!Gemm(true, false, a.keys, a.dim, rows, dropped, a.keys, dcontext_block, a.heads * a.dim, 1.0f, dv,
                    a.kv_row) ||
              !Gemm(false, true, rows, a.keys, a.dim, dcontext_block, a.heads * a.dim, a.ValueHead(b, h), a.kv_row,
                    0.0f, work.data(), a.keys)) { ok = false; return; }
          for (int64_t r = 0; r < rows; ++r) {
            float *dprobs = work.data() + r * a.keys, *pr = probs.data() + r * a.keys;
            if (a.p > 0.0f) {
              const uint8_t *kept_row = kept.data() + r * a.keys;
#pragma omp simd
              for (int64_t c = 0; c < a.keys; ++c) dprobs[c] = kept_row[c] ? dprobs[c] * keep_scale : 0.0f;
            }
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int64_t c = 0; c < a.keys; ++c) dot += pr[c] * dprobs[c];
#pragma omp simd
            for (int64_t c = 0; c < a.keys; ++c) pr[c] = pr[c] * (dprobs[c] - dot) * a.scaling;  // dscores, in place
          }
          const int64_t q_block = a.QueryOffset(b, h, s0);
          if (!Gemm(false, false, rows, a.dim, a.keys, probs.data(), a.keys, a.KeyHead(b, h), a.kv_row, 0.0f,
                    dquery + q_block, a.q_row) ||
              !Gemm(true, false, a.keys, a.dim, rows, probs.data(), a.keys, a.q + q_block, a.q_row, 1.0f, dk,
                    a.kv_row)) {
            ok = false;
            return;
          }
        }
      }
    }
  });
  return ok ? 0 : 1;
}
}  // namespace

extern "C" int AttentionBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  return RunAttentionBackward(false, nparam, params, ndims, shapes, dtypes);
}
extern "C" int AttentionBackwardBSHD(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  return RunAttentionBackward(true, nparam, params, ndims, shapes, dtypes);
}
#endif  // MINDONE_FT_DNNL

// Shared definitions of the StyleGAN Hub CUDA kernels (custom_ops/cuda/*.cu).
//
// The per-element maths of every kernel lives in headers that also compile as plain C++
// (no CUDA types outside `#if defined(__CUDACC__)`), so that tests/custom_ops can run the
// exact same index arithmetic on the CPU against the PyTorch references when no GPU exists.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define HUB_HD __host__ __device__ __forceinline__
#else
#define HUB_HD inline
#endif

namespace hub {

// dtype codes passed from the .cpp bindings to the launchers.
enum DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2, kFloat64 = 3 };

// Storage type T <-> accumulator type: float for float/half/bfloat16, double for double.
template <typename T> struct Scalar;

template <> struct Scalar<float> {
  using acc = float;
  static HUB_HD float load(float v) { return v; }
  static HUB_HD float store(float v) { return v; }
};

template <> struct Scalar<double> {
  using acc = double;
  static HUB_HD double load(double v) { return v; }
  static HUB_HD double store(double v) { return v; }
};

// Math overloads that resolve to the single- or double-precision routine on host and device.
HUB_HD float hub_exp(float v) { return expf(v); }
HUB_HD double hub_exp(double v) { return exp(v); }
HUB_HD float hub_expm1(float v) { return expm1f(v); }
HUB_HD double hub_expm1(double v) { return expm1(v); }
HUB_HD float hub_log1p(float v) { return log1pf(v); }
HUB_HD double hub_log1p(double v) { return log1p(v); }
HUB_HD float hub_tanh(float v) { return tanhf(v); }
HUB_HD double hub_tanh(double v) { return tanh(v); }

// Remainder in [0, m) for any sign of v (C++ `%` truncates toward zero).
HUB_HD int64_t pos_mod(int64_t v, int64_t m) {
  int64_t r = v % m;
  return r < 0 ? r + m : r;
}

}  // namespace hub

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace hub {

// torch builds with __CUDA_NO_HALF_CONVERSIONS__, so convert explicitly.
template <> struct Scalar<__half> {
  using acc = float;
  static HUB_HD float load(__half v) { return __half2float(v); }
  static HUB_HD __half store(float v) { return __float2half_rn(v); }
};

template <> struct Scalar<__nv_bfloat16> {
  using acc = float;
  static HUB_HD float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  static HUB_HD __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};

// A 1-D grid for a grid-stride loop over `total` elements (total > 0).
inline dim3 grid_for(int64_t total, int threads) {
  int64_t blocks = (total + threads - 1) / threads;
  const int64_t max_blocks = int64_t(1) << 20;
  return dim3(static_cast<unsigned>(blocks < max_blocks ? blocks : max_blocks));
}

}  // namespace hub
#endif

// CUDA kernel and launcher around fir_core.cuh: one thread per output element, grid-stride.
//
// A direct kernel: each thread reads only the filter taps that land on real input samples
// ((f_h / up_y) * (f_w / up_x) of them), through the read-only cache. Used by upfirdn2d.cu
// and filtered_lrelu.cu (each instantiates it in its own extension).
#pragma once

#include <cuda_runtime.h>

#include "fir_core.cuh"

namespace hub {

template <typename T>
__global__ void fir_kernel(FirParams p, const T* __restrict__ x, const T* __restrict__ bias,
                           const typename Scalar<T>::acc* __restrict__ f, T* __restrict__ y,
                           uint8_t* __restrict__ code) {
  using A = typename Scalar<T>::acc;
  const int64_t total = p.planes * p.out_h * p.out_w;
  const int64_t stride = int64_t(blockDim.x) * gridDim.x;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride) {
    y[idx] = fir_element<T, A>(p, x, bias, f, idx, code);
  }
}

template <typename T>
cudaError_t fir_launch_typed(const FirParams& p, const void* x, const void* bias, const void* f, void* y,
                             uint8_t* code, cudaStream_t stream) {
  using A = typename Scalar<T>::acc;
  const int64_t total = p.planes * p.out_h * p.out_w;
  if (total == 0) return cudaSuccess;
  constexpr int threads = 256;
  fir_kernel<T><<<grid_for(total, threads), threads, 0, stream>>>(
      p, static_cast<const T*>(x), static_cast<const T*>(bias), static_cast<const A*>(f), static_cast<T*>(y), code);
  return cudaGetLastError();
}

// `f` is float32 for float32/float16/bfloat16 inputs and float64 for float64 inputs.
inline cudaError_t fir_launch(const FirParams& p, int dtype, const void* x, const void* bias, const void* f,
                              void* y, uint8_t* code, cudaStream_t stream) {
  switch (dtype) {
    case kFloat32: return fir_launch_typed<float>(p, x, bias, f, y, code, stream);
    case kFloat16: return fir_launch_typed<__half>(p, x, bias, f, y, code, stream);
    case kBFloat16: return fir_launch_typed<__nv_bfloat16>(p, x, bias, f, y, code, stream);
    case kFloat64: return fir_launch_typed<double>(p, x, bias, f, y, code, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace hub

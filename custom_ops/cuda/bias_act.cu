// bias_act CUDA kernels: forward and input gradient, one thread per element (grid-stride).
#include <cuda_runtime.h>

#include "bias_act_core.cuh"

namespace {

template <typename T>
__global__ void bias_act_kernel(hub::BiasActParams p, const T* __restrict__ x, const T* __restrict__ b,
                                T* __restrict__ y) {
  using A = typename hub::Scalar<T>::acc;
  const int64_t stride = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < p.numel; i += stride) {
    y[i] = hub::bias_act_element<T, A>(p, x, b, i);
  }
}

template <typename T>
__global__ void bias_act_grad_kernel(hub::BiasActParams p, const T* __restrict__ dy, const T* __restrict__ x,
                                     const T* __restrict__ b, T* __restrict__ dx) {
  using A = typename hub::Scalar<T>::acc;
  const int64_t stride = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < p.numel; i += stride) {
    dx[i] = hub::bias_act_grad_element<T, A>(p, dy, x, b, i);
  }
}

constexpr int kThreads = 256;

// dy == nullptr launches the forward kernel (out = y), otherwise the gradient (out = dx).
template <typename T>
cudaError_t launch_typed(const hub::BiasActParams& p, const void* dy, const void* x, const void* b, void* out,
                         cudaStream_t stream) {
  if (p.numel == 0) return cudaSuccess;
  const dim3 grid = hub::grid_for(p.numel, kThreads);
  if (dy == nullptr) {
    bias_act_kernel<T><<<grid, kThreads, 0, stream>>>(p, static_cast<const T*>(x), static_cast<const T*>(b),
                                                       static_cast<T*>(out));
  } else {
    bias_act_grad_kernel<T><<<grid, kThreads, 0, stream>>>(p, static_cast<const T*>(dy), static_cast<const T*>(x),
                                                            static_cast<const T*>(b), static_cast<T*>(out));
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t hub_bias_act_launch(const hub::BiasActParams& p, int dtype, const void* dy, const void* x, const void* b,
                                void* out, cudaStream_t stream) {
  switch (dtype) {
    case hub::kFloat32: return launch_typed<float>(p, dy, x, b, out, stream);
    case hub::kFloat16: return launch_typed<__half>(p, dy, x, b, out, stream);
    case hub::kBFloat16: return launch_typed<__nv_bfloat16>(p, dy, x, b, out, stream);
    case hub::kFloat64: return launch_typed<double>(p, dy, x, b, out, stream);
    default: return cudaErrorInvalidValue;
  }
}

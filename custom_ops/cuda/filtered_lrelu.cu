// filtered_lrelu CUDA kernels: two launches of the FIR kernel (fir_core.cuh).
//
// Stage 1 adds the bias, upsamples with fu and applies leaky ReLU, gain and clamp in its
// epilogue (writing a per-pixel gradient code when autograd needs it); stage 2 filters with
// fd and downsamples. The backward pass uses the same kernel without activation.
#include "fir_kernel.cuh"

cudaError_t hub_filtered_lrelu_launch(const hub::FirParams& p, int dtype, const void* x, const void* bias,
                                      const void* f, void* y, uint8_t* code, cudaStream_t stream) {
  return hub::fir_launch(p, dtype, x, bias, f, y, code, stream);
}

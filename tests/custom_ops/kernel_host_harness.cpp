// Host build of the CUDA kernels' per-element maths (custom_ops/cuda/*_core.cuh), for tests.
//
// Each entry point runs the same element function the CUDA kernels run, in a plain loop
// over the output, so tests/custom_ops/test_kernel_host.py can check the index arithmetic
// against the PyTorch references on a machine without a GPU. dtype: 0 float32, 3 float64.
#include <cstdint>

#include "bias_act_core.cuh"
#include "fir_core.cuh"

namespace {

template <typename T>
void fir_loop(const hub::FirParams& p, const void* x, const void* bias, const void* f, void* y, uint8_t* code) {
  using A = typename hub::Scalar<T>::acc;
  const int64_t total = p.planes * p.out_h * p.out_w;
  for (int64_t i = 0; i < total; ++i) {
    static_cast<T*>(y)[i] = hub::fir_element<T, A>(p, static_cast<const T*>(x), static_cast<const T*>(bias),
                                                   static_cast<const A*>(f), i, code);
  }
}

template <typename T>
void bias_act_loop(const hub::BiasActParams& p, const void* dy, const void* x, const void* b, void* out) {
  using A = typename hub::Scalar<T>::acc;
  for (int64_t i = 0; i < p.numel; ++i) {
    static_cast<T*>(out)[i] =
        dy == nullptr
            ? hub::bias_act_element<T, A>(p, static_cast<const T*>(x), static_cast<const T*>(b), i)
            : hub::bias_act_grad_element<T, A>(p, static_cast<const T*>(dy), static_cast<const T*>(x),
                                               static_cast<const T*>(b), i);
  }
}

}  // namespace

extern "C" {

int hub_host_fir(int dtype, int64_t planes, int64_t channels, int64_t in_h, int64_t in_w, int64_t out_h,
                 int64_t out_w, int64_t up_x, int64_t up_y, int64_t down_x, int64_t down_y, int64_t pad_x0,
                 int64_t pad_y0, int64_t f_h, int64_t f_w, int act, double slope, double gain, double clamp,
                 const void* x, const void* bias, const void* f, void* y, uint8_t* code) {
  hub::FirParams p{};
  p.planes = planes;
  p.channels = channels;
  p.in_h = in_h;
  p.in_w = in_w;
  p.out_h = out_h;
  p.out_w = out_w;
  p.up_x = up_x;
  p.up_y = up_y;
  p.down_x = down_x;
  p.down_y = down_y;
  p.pad_x0 = pad_x0;
  p.pad_y0 = pad_y0;
  p.f_h = f_h;
  p.f_w = f_w;
  p.act = act;
  p.slope = slope;
  p.gain = gain;
  p.clamp = clamp;
  if (dtype == hub::kFloat32) {
    fir_loop<float>(p, x, bias, f, y, code);
  } else if (dtype == hub::kFloat64) {
    fir_loop<double>(p, x, bias, f, y, code);
  } else {
    return 1;
  }
  return 0;
}

int hub_host_bias_act(int dtype, int64_t numel, int64_t inner, int64_t channels, int act, double alpha, double gain,
                      double clamp, const void* dy, const void* x, const void* b, void* out) {
  hub::BiasActParams p{};
  p.numel = numel;
  p.inner = inner;
  p.channels = channels;
  p.act = act;
  p.alpha = alpha;
  p.gain = gain;
  p.clamp = clamp;
  if (dtype == hub::kFloat32) {
    bias_act_loop<float>(p, dy, x, b, out);
  } else if (dtype == hub::kFloat64) {
    bias_act_loop<double>(p, dy, x, b, out);
  } else {
    return 1;
  }
  return 0;
}

}  // extern "C"

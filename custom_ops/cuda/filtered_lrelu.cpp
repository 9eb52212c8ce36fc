// Torch bindings of the filtered_lrelu kernels: torch.ops.hub_filtered_lrelu.fir.
//
// One general FIR stage (bias, up/down, padding, optional leaky ReLU + gain + clamp with a
// uint8 gradient code per pixel). custom_ops/_cuda_filtered_lrelu.py chains two of them
// for the forward pass and two plain ones for the backward pass.
#include "fir_core.cuh"
#include "torch_glue.h"

cudaError_t hub_filtered_lrelu_launch(const hub::FirParams& p, int dtype, const void* x, const void* bias,
                                      const void* f, void* y, uint8_t* code, cudaStream_t stream);

namespace {

std::tuple<at::Tensor, at::Tensor> fir(const at::Tensor& x, const at::Tensor& f, const std::optional<at::Tensor>& b,
                                       int64_t up_x, int64_t up_y, int64_t down_x, int64_t down_y, int64_t pad_x0,
                                       int64_t pad_y0, int64_t out_h, int64_t out_w, bool activate, double slope,
                                       double gain, double clamp, bool want_code) {
  hub::check_cuda(x, x, "x");
  hub::check_cuda(f, x, "f");
  TORCH_CHECK(x.dim() == 4, "x must be [N, C, H, W], got ", x.sizes());
  TORCH_CHECK(f.dim() == 2 && f.size(0) >= 1 && f.size(1) >= 1, "f must be a non-empty 2-D filter, got ", f.sizes());
  TORCH_CHECK(f.scalar_type() == hub::acc_type(x), "f must be ", hub::acc_type(x), " for ", x.scalar_type(), " data");
  TORCH_CHECK(up_x >= 1 && up_y >= 1 && down_x >= 1 && down_y >= 1, "up and down must be >= 1");
  TORCH_CHECK(out_h >= 1 && out_w >= 1, "output size must be positive, got ", out_h, "x", out_w);
  TORCH_CHECK(!want_code || activate, "a gradient code needs the activation stage");
  const int dtype = hub::dtype_code(x);

  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  const at::Tensor fc = f.contiguous();
  at::Tensor bc;
  if (b.has_value() && b->defined()) {
    hub::check_cuda(*b, x, "b");
    TORCH_CHECK(b->dim() == 1 && b->size(0) == x.size(1), "b must be [C] with C = ", x.size(1), ", got ", b->sizes());
    TORCH_CHECK(b->scalar_type() == x.scalar_type(), "b must have the dtype of x");
    bc = b->contiguous();
  }
  at::Tensor y = at::empty({x.size(0), x.size(1), out_h, out_w}, x.options());
  const auto code_options = x.options().dtype(at::kByte);
  at::Tensor code = want_code ? at::empty(y.sizes(), code_options) : at::empty({0}, code_options);

  hub::FirParams p{};
  p.planes = x.size(0) * x.size(1);
  p.channels = x.size(1);
  p.in_h = x.size(2);
  p.in_w = x.size(3);
  p.out_h = out_h;
  p.out_w = out_w;
  p.up_x = up_x;
  p.up_y = up_y;
  p.down_x = down_x;
  p.down_y = down_y;
  p.pad_x0 = pad_x0;
  p.pad_y0 = pad_y0;
  p.f_h = f.size(0);
  p.f_w = f.size(1);
  p.act = activate ? 1 : 0;
  p.slope = slope;
  p.gain = gain;
  p.clamp = clamp;
  hub::check_launch(hub_filtered_lrelu_launch(p, dtype, xc.data_ptr(), bc.defined() ? bc.data_ptr() : nullptr,
                                              fc.data_ptr(), y.data_ptr(),
                                              want_code ? code.data_ptr<uint8_t>() : nullptr,
                                              c10::cuda::getCurrentCUDAStream().stream()),
                    "filtered_lrelu");
  return {y, code};
}

}  // namespace

TORCH_LIBRARY(hub_filtered_lrelu, m) {
  m.def("fir(Tensor x, Tensor f, Tensor? b, int up_x, int up_y, int down_x, int down_y, int pad_x0, int pad_y0, "
        "int out_h, int out_w, bool activate, float slope, float gain, float clamp, bool want_code) "
        "-> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(hub_filtered_lrelu, CUDA, m) { m.impl("fir", &fir); }

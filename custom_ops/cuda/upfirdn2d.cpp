// Torch bindings of the upfirdn2d kernel: torch.ops.hub_upfirdn2d.upfirdn2d.
//
// The Python wrapper (custom_ops/_cuda_upfirdn2d.py) passes the effective correlation
// filter (flipped, scaled, 2-D) and the output size; this file checks and launches.
#include "fir_core.cuh"
#include "torch_glue.h"

cudaError_t hub_upfirdn2d_launch(const hub::FirParams& p, int dtype, const void* x, const void* f, void* y,
                                 cudaStream_t stream);

namespace {

at::Tensor upfirdn2d(const at::Tensor& x, const at::Tensor& f, int64_t up_x, int64_t up_y, int64_t down_x,
                     int64_t down_y, int64_t pad_x0, int64_t pad_y0, int64_t out_h, int64_t out_w) {
  hub::check_cuda(x, x, "x");
  hub::check_cuda(f, x, "f");
  TORCH_CHECK(x.dim() == 4, "x must be [N, C, H, W], got ", x.sizes());
  TORCH_CHECK(f.dim() == 2 && f.size(0) >= 1 && f.size(1) >= 1, "f must be a non-empty 2-D filter, got ", f.sizes());
  TORCH_CHECK(f.scalar_type() == hub::acc_type(x), "f must be ", hub::acc_type(x), " for ", x.scalar_type(), " data");
  TORCH_CHECK(up_x >= 1 && up_y >= 1 && down_x >= 1 && down_y >= 1, "up and down must be >= 1");
  TORCH_CHECK(out_h >= 1 && out_w >= 1, "output size must be positive, got ", out_h, "x", out_w);
  const int dtype = hub::dtype_code(x);

  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  const at::Tensor fc = f.contiguous();
  at::Tensor y = at::empty({x.size(0), x.size(1), out_h, out_w}, x.options());

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
  p.act = 0;
  hub::check_launch(hub_upfirdn2d_launch(p, dtype, xc.data_ptr(), fc.data_ptr(), y.data_ptr(),
                                         c10::cuda::getCurrentCUDAStream().stream()),
                    "upfirdn2d");
  return y;
}

}  // namespace

TORCH_LIBRARY(hub_upfirdn2d, m) {
  m.def("upfirdn2d(Tensor x, Tensor f, int up_x, int up_y, int down_x, int down_y, int pad_x0, int pad_y0, "
        "int out_h, int out_w) -> Tensor");
}

TORCH_LIBRARY_IMPL(hub_upfirdn2d, CUDA, m) { m.impl("upfirdn2d", &upfirdn2d); }

// Torch bindings of the bias_act kernels: torch.ops.hub_bias_act.{bias_act, bias_act_grad}.
//
// The Python wrapper (custom_ops/_cuda_bias_act.py) resolves the defaults and passes the
// bias stride (`inner`, the product of the sizes after `dim`); the bias gradient is a sum
// of the input gradient, done in Python.
#include "bias_act_core.cuh"
#include "torch_glue.h"

cudaError_t hub_bias_act_launch(const hub::BiasActParams& p, int dtype, const void* dy, const void* x, const void* b,
                                void* out, cudaStream_t stream);

namespace {

hub::BiasActParams make_params(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim, int64_t act,
                               double alpha, double gain, double clamp) {
  TORCH_CHECK(dim >= 0 && dim < std::max<int64_t>(x.dim(), 1), "dim out of range: ", dim);
  TORCH_CHECK(act >= hub::kLinear && act <= hub::kSwish, "unknown activation id ", act);
  hub::BiasActParams p{};
  p.numel = x.numel();
  p.channels = x.dim() > 0 ? x.size(dim) : 1;
  p.inner = 1;
  for (int64_t i = dim + 1; i < x.dim(); ++i) p.inner *= x.size(i);
  p.act = static_cast<int>(act);
  p.alpha = alpha;
  p.gain = gain;
  p.clamp = clamp;
  if (b.has_value() && b->defined()) {
    hub::check_cuda(*b, x, "b");
    TORCH_CHECK(b->dim() == 1 && b->size(0) == p.channels, "b must be [", p.channels, "], got ", b->sizes());
    TORCH_CHECK(b->scalar_type() == x.scalar_type(), "b must have the dtype of x");
  }
  return p;
}

const void* bias_ptr(const std::optional<at::Tensor>& b, at::Tensor& keep) {
  if (!b.has_value() || !b->defined()) return nullptr;
  keep = b->contiguous();
  return keep.data_ptr();
}

at::Tensor forward(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim, int64_t act, double alpha,
                   double gain, double clamp) {
  hub::check_cuda(x, x, "x");
  const int dtype = hub::dtype_code(x);
  const hub::BiasActParams p = make_params(x, b, dim, act, alpha, gain, clamp);
  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  at::Tensor bc;
  const void* bp = bias_ptr(b, bc);
  at::Tensor y = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  hub::check_launch(hub_bias_act_launch(p, dtype, nullptr, xc.data_ptr(), bp, y.data_ptr(),
                                        c10::cuda::getCurrentCUDAStream().stream()),
                    "bias_act");
  return y;
}

at::Tensor grad(const at::Tensor& dy, const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim, int64_t act,
                double alpha, double gain, double clamp) {
  hub::check_cuda(x, x, "x");
  hub::check_cuda(dy, x, "dy");
  TORCH_CHECK(dy.sizes() == x.sizes() && dy.scalar_type() == x.scalar_type(), "dy must match x in shape and dtype");
  const int dtype = hub::dtype_code(x);
  const hub::BiasActParams p = make_params(x, b, dim, act, alpha, gain, clamp);
  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  const at::Tensor dyc = dy.contiguous();
  at::Tensor bc;
  const void* bp = bias_ptr(b, bc);
  at::Tensor dx = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  hub::check_launch(hub_bias_act_launch(p, dtype, dyc.data_ptr(), xc.data_ptr(), bp, dx.data_ptr(),
                                        c10::cuda::getCurrentCUDAStream().stream()),
                    "bias_act grad");
  return dx;
}

}  // namespace

TORCH_LIBRARY(hub_bias_act, m) {
  m.def("bias_act(Tensor x, Tensor? b, int dim, int act, float alpha, float gain, float clamp) -> Tensor");
  m.def("bias_act_grad(Tensor dy, Tensor x, Tensor? b, int dim, int act, float alpha, float gain, float clamp) "
        "-> Tensor");
}

TORCH_LIBRARY_IMPL(hub_bias_act, CUDA, m) {
  m.impl("bias_act", &forward);
  m.impl("bias_act_grad", &grad);
}

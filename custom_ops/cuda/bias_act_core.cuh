// Per-element maths of the bias_act kernels (forward and input gradient).
//
// Semantics of NVlabs' torch_utils/ops/bias_act (github.com/NVlabs/stylegan3):
// y = clamp(act(x + b) * gain, -clamp, clamp). Activation ids are the `cuda_idx` values of
// custom_ops/bias_act.py's ACTIVATIONS. Derivatives follow PyTorch's own backward formulas
// at the kinks (relu/lrelu use the negative branch at 0; torch.clamp passes the gradient
// only strictly inside the bounds).
#pragma once

#include "common.cuh"

namespace hub {

enum Act : int {
  kLinear = 1, kRelu = 2, kLrelu = 3, kTanh = 4, kSigmoid = 5, kElu = 6, kSelu = 7, kSoftplus = 8, kSwish = 9
};

struct BiasActParams {
  int64_t numel;
  int64_t inner;     // product of x's sizes after `dim` (the bias stride)
  int64_t channels;  // x.shape[dim]
  int act;
  double alpha, gain, clamp;  // clamp < 0 disables clamping
};

constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSoftplusThreshold = 20.0;  // F.softplus's default: linear above it

template <typename A>
HUB_HD A sigmoid(A s) {
  return A(1) / (A(1) + hub_exp(-s));
}

template <typename A>
HUB_HD A act_value(int act, A s, A alpha) {
  switch (act) {
    case kRelu: return s > A(0) ? s : A(0);
    case kLrelu: return s > A(0) ? s : s * alpha;
    case kTanh: return hub_tanh(s);
    case kSigmoid: return sigmoid(s);
    case kElu: return s > A(0) ? s : hub_expm1(s);
    case kSelu: return s > A(0) ? A(kSeluScale) * s : A(kSeluScale * kSeluAlpha) * hub_expm1(s);
    case kSoftplus: return s > A(kSoftplusThreshold) ? s : hub_log1p(hub_exp(s));
    case kSwish: return s * sigmoid(s);
    default: return s;  // kLinear
  }
}

// d act(s) / d s.
template <typename A>
HUB_HD A act_derivative(int act, A s, A alpha) {
  switch (act) {
    case kRelu: return s > A(0) ? A(1) : A(0);
    case kLrelu: return s > A(0) ? A(1) : alpha;
    case kTanh: {
      const A t = hub_tanh(s);
      return A(1) - t * t;
    }
    case kSigmoid: {
      const A g = sigmoid(s);
      return g * (A(1) - g);
    }
    case kElu: return s > A(0) ? A(1) : hub_exp(s);
    case kSelu: return s > A(0) ? A(kSeluScale) : A(kSeluScale * kSeluAlpha) * hub_exp(s);
    case kSoftplus: return s > A(kSoftplusThreshold) ? A(1) : sigmoid(s);
    case kSwish: {
      const A g = sigmoid(s);
      return g * (A(1) + s * (A(1) - g));
    }
    default: return A(1);  // kLinear
  }
}

// x[i] + b[channel of i] in the accumulator type; `b` may be null.
template <typename T, typename A>
HUB_HD A biased(const BiasActParams& p, const T* x, const T* b, int64_t i) {
  A s = Scalar<T>::load(x[i]);
  if (b != nullptr) s += Scalar<T>::load(b[(i / p.inner) % p.channels]);
  return s;
}

template <typename T, typename A>
HUB_HD T bias_act_element(const BiasActParams& p, const T* x, const T* b, int64_t i) {
  A v = act_value<A>(p.act, biased<T, A>(p, x, b, i), A(p.alpha)) * A(p.gain);
  if (p.clamp >= 0) {
    const A bound = A(p.clamp);
    v = v > bound ? bound : (v < -bound ? -bound : v);
  }
  return Scalar<T>::store(v);
}

// dL/dx[i] = dy[i] * gain * act'(s), zero where the output reached the clamp bound.
template <typename T, typename A>
HUB_HD T bias_act_grad_element(const BiasActParams& p, const T* dy, const T* x, const T* b, int64_t i) {
  const A s = biased<T, A>(p, x, b, i);
  A d = act_derivative<A>(p.act, s, A(p.alpha)) * A(p.gain);
  if (p.clamp >= 0) {
    const A v = act_value<A>(p.act, s, A(p.alpha)) * A(p.gain);
    if (v >= A(p.clamp) || v <= -A(p.clamp)) d = A(0);
  }
  return Scalar<T>::store(Scalar<T>::load(dy[i]) * d);
}

}  // namespace hub

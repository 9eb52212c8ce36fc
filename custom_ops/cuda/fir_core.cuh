// Per-output-element maths of the upfirdn2d kernel (also the two stages of filtered_lrelu).
//
// Semantics follow NVlabs' torch_utils/ops/upfirdn2d (github.com/NVlabs/stylegan3): the
// input plane is upsampled by zero insertion, padded (negative values crop), correlated
// with a 2-D filter and every `down`-th sample is kept. Here the filter `f` is the
// *correlation* filter: the Python wrapper has already flipped it (unless flip_filter),
// scaled it by the gain and expanded 1-D taps to their outer product.
//
// One output pixel (oy, ox) reads upsampled positions uy = oy*down_y - pad_y0 + ky for
// ky in [0, f_h); only positions that are multiples of up_y hold input samples, at input
// row uy / up_y. So ky starts at the first tap that lands on a multiple of up_y and steps
// by up_y. The trailing padding only determines out_h/out_w (computed by the caller).
#pragma once

#include "common.cuh"

namespace hub {

struct FirParams {
  int64_t planes;      // N * C
  int64_t channels;    // C, to index the bias
  int64_t in_h, in_w;  // input plane size
  int64_t out_h, out_w;
  int64_t up_x, up_y, down_x, down_y;
  int64_t pad_x0, pad_y0;  // leading padding of the upsampled plane; negative crops
  int64_t f_h, f_w;        // correlation filter size
  int act;                 // 0: none; 1: leaky ReLU, gain, clamp (filtered_lrelu)
  double slope, gain, clamp;  // used when act == 1; clamp < 0 disables clamping
};

// Gradient codes written by the activated stage (needed by filtered_lrelu's backward):
// 0 = clamped (no gradient), 1 = positive branch (gain), 2 = negative branch (gain * slope).
enum FirCode : uint8_t { kCodeClamped = 0, kCodePositive = 1, kCodeNegative = 2 };

// Correlation of one output pixel; `bias` (nullable, per channel) is added to every real
// input sample before filtering, as bias_act(x, b) before upfirdn2d does.
template <typename T, typename A>
HUB_HD A fir_accumulate(const FirParams& p, const T* x, const T* bias, const A* f, int64_t idx) {
  const int64_t ox = idx % p.out_w;
  const int64_t oy = (idx / p.out_w) % p.out_h;
  const int64_t plane = idx / (p.out_w * p.out_h);
  const T* xp = x + plane * p.in_h * p.in_w;
  const A b = bias != nullptr ? Scalar<T>::load(bias[plane % p.channels]) : A(0);

  const int64_t base_y = oy * p.down_y - p.pad_y0;  // upsampled row of tap ky = 0
  const int64_t base_x = ox * p.down_x - p.pad_x0;
  const int64_t ky0 = pos_mod(-base_y, p.up_y);  // first tap on a real (non-inserted) row
  const int64_t kx0 = pos_mod(-base_x, p.up_x);

  A acc = A(0);
  for (int64_t ky = ky0; ky < p.f_h; ky += p.up_y) {
    const int64_t uy = base_y + ky;
    if (uy < 0) continue;
    const int64_t iy = uy / p.up_y;
    if (iy >= p.in_h) break;
    const T* row = xp + iy * p.in_w;
    const A* frow = f + ky * p.f_w;
    for (int64_t kx = kx0; kx < p.f_w; kx += p.up_x) {
      const int64_t ux = base_x + kx;
      if (ux < 0) continue;
      const int64_t ix = ux / p.up_x;
      if (ix >= p.in_w) break;
      acc += frow[kx] * (Scalar<T>::load(row[ix]) + b);
    }
  }
  return acc;
}

// Leaky ReLU, gain and clamp of filtered_lrelu's middle step (bias_act with act='lrelu').
// torch.clamp passes the gradient only strictly inside the bounds, so values that land
// exactly on a bound are marked as clamped too.
template <typename A>
HUB_HD A fir_activate(const FirParams& p, A v, uint8_t* code) {
  const bool positive = v > A(0);
  v = positive ? v : v * A(p.slope);
  v = v * A(p.gain);
  uint8_t c = positive ? kCodePositive : kCodeNegative;
  if (p.clamp >= 0) {
    const A bound = A(p.clamp);
    if (v >= bound) {
      v = bound;
      c = kCodeClamped;
    } else if (v <= -bound) {
      v = -bound;
      c = kCodeClamped;
    }
  }
  *code = c;
  return v;
}

// Full output element: filter, then (act == 1) activation; writes the code if requested.
template <typename T, typename A>
HUB_HD T fir_element(const FirParams& p, const T* x, const T* bias, const A* f, int64_t idx,
                     uint8_t* code) {
  A v = fir_accumulate<T, A>(p, x, bias, f, idx);
  if (p.act == 1) {
    uint8_t c;
    v = fir_activate<A>(p, v, &c);
    if (code != nullptr) code[idx] = c;
  }
  return Scalar<T>::store(v);
}

}  // namespace hub

// Elasticity (HU -> E) and Gaussian-kernel math of the DEM op, shared by the C++ CPU loops, the CUDA
// kernels and the CuPy (NVRTC) kernels: the formulas of features.md, "Elasticity image E" and
// "Differential elasticity map DEM", written once.
#pragma once
#include "hd.h"

namespace rlnfast {
namespace dem {

// Parameters of the HU -> E transform (features.md): clip to [clip_lo, clip_hi], Schneider density,
// rho = max(rho, 1), E = 1000 ((rho / rho_w)^gamma - 1).
struct ElasticityParams {
  double clip_lo;
  double clip_hi;
  double rho_w;    // reference density (kg/m^3): rho(HU 0) = 1011.886114911114 by default
  double gamma;
};

// Mass density (kg/m^3) of a clipped HU value: the piecewise-linear fit of Schneider et al. 1996 as in
// k-Wave's hounsfield2density, with x = HU + 1000, floored at 1.
RLNFAST_HD double schneider_density(double h) {
  const double x = h + 1000.0;
  double rho;
  // a * x + b as NumPy rounds it: the product, then the sum (no fused multiply-add on any backend)
  if (x < 930.0) rho = rl_add(rl_mul(1.025793065681423, x), -5.680404011488714);
  else if (x < 1098.0) rho = rl_add(rl_mul(0.9082709691264, x), 103.6151457847139);
  else if (x < 1260.0) rho = rl_add(rl_mul(0.5108369316599, x), 539.9977189228704);
  else rho = rl_add(rl_mul(0.6625370912451, x), 348.8555178455294);
  return rho < 1.0 ? 1.0 : rho;
}

// numpy.clip semantics: NaN stays NaN.
RLNFAST_HD double clip_hu(double h, double lo, double hi) {
  if (h < lo) return lo;
  if (h > hi) return hi;
  return h;
}

// E of one HU value (per-mille stiffness contrast against water-equivalent tissue). gamma 1 and 2 avoid
// pow(): the common case, and r * r is the correctly rounded square.
RLNFAST_HD double elasticity(double hu, const ElasticityParams& p) {
  const double r = schneider_density(clip_hu(hu, p.clip_lo, p.clip_hi)) / p.rho_w;
  double er;
  if (p.gamma == 2.0) er = r * r;
  else if (p.gamma == 1.0) er = r;
  else er = pow(r, p.gamma);
  return 1000.0 * (er - 1.0);
}

// scipy.ndimage's filter radius for one axis: int(truncate * sigma_vox + 0.5), truncate = 4.
RLNFAST_HD int gaussian_radius(double sigma_vox) { return (int)(4.0 * sigma_vox + 0.5); }

#ifndef __CUDACC_RTC__
// numpy's pairwise summation of a contiguous float64 array (numpy/core/src/umath/loops_utils.h), so
// the kernel normalisation matches scipy's phi_x / phi_x.sum() to the last bit where exp() agrees.
// Host only: the weights are computed once per call and copied to the device.
inline double numpy_pairwise_sum(const double* a, int n) {
  if (n < 8) {
    double res = 0.0;
    for (int i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    int i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  int n2 = n / 2;
  n2 -= n2 % 8;
  return numpy_pairwise_sum(a, n2) + numpy_pairwise_sum(a + n2, n - n2);
}

// Half of scipy's _gaussian_kernel1d(sigma, order, radius) for order 0 and 1, as convolution weights
// (scipy correlates with the reversed kernel): w0[k] = phi(k) (symmetric), w1[k] = (k / sigma^2) phi(k)
// (antisymmetric), so that
//   smooth(f)(x) = w0[0] f(x) + sum_{k>=1} w0[k] (f(x+k) + f(x-k))
//   deriv(f)(x)  =              sum_{k>=1} w1[k] (f(x+k) - f(x-k))
// `phi` is scratch of 2 radius + 1 doubles; w0 and w1 hold radius + 1 each (w1[0] = 0).
inline void gaussian_half_kernels(double sigma_vox, int radius, double* phi, double* w0, double* w1) {
  const double sigma2 = sigma_vox * sigma_vox;
  const double c = -0.5 / sigma2;
  const int n = 2 * radius + 1;
  for (int i = 0; i < n; ++i) {
    const double x = (double)(i - radius);
    phi[i] = exp(c * (x * x));
  }
  const double s = numpy_pairwise_sum(phi, n);
  const double m = -1.0 / sigma2;
  for (int k = 0; k <= radius; ++k) {
    const double p = phi[radius + k] / s;
    w0[k] = p;
    // scipy: q(x) = x * (-1 / sigma^2); the weight of f(x + k) is q(-k) phi(k)
    w1[k] = k == 0 ? 0.0 : ((double)(-k) * m) * p;
  }
}
#endif

}  // namespace dem
}  // namespace rlnfast

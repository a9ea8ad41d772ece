// pyradiomics first-order math (radiomics/firstorder.py, imageoperations.getBinEdges), shared by the C++
// CPU loop, the CUDA kernel and the CuPy kernel. Every function reproduces one NumPy call bit for bit
// where it can (arange edges, digitize, linear percentile, remainder), because Entropy depends on which
// bin a voxel lands in and a one-ulp edge shift moves voxels between bins.
#pragma once
#include "hd.h"

namespace rlnfast {
namespace fo {

// Output columns, in this order, for every backend.
enum Feature {
  Energy = 0, TotalEnergy, Entropy, Minimum, Percentile10, Percentile90, Maximum, Mean, Median,
  InterquartileRange, Range, MeanAbsoluteDeviation, RobustMeanAbsoluteDeviation, RootMeanSquared,
  StandardDeviation, Skewness, Kurtosis, Variance, Uniformity, NFeatures
};

enum BinMode { BinWidth = 0, BinCount = 1 };

RLNFAST_HD bool is_finite(double x) {
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
  return isfinite(x);
#else
  return std::isfinite(x);
#endif
}

// numpy.remainder(a, b): the result has the sign of b.
RLNFAST_HD double np_remainder(double a, double b) {
  double mod = fmod(a, b);
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = copysign(0.0, b);
  }
  return mod;
}

// The bin edges of one region, as pyradiomics getBinEdges builds them:
// binWidth: numpy.arange(min - min % w, max + 2 w, w)  -> edge_i = start + i * delta, delta = (start + w) - start
// binCount: numpy.histogram(values, n)[1], last edge + 1 -> edge_i = start + i * step, last = stop + 1
// For a float32 image NumPy computes min/max arithmetic in float32 and, with binCount, the edges too (f32).
// Most edges a region may have: NumPy would allocate them (8 bytes each); beyond, the region cannot be binned
// as pyradiomics bins it (rlnfast.spec.firstorder.MAX_BIN_EDGES is the same number).
#define RLNFAST_FO_MAX_EDGES (1LL << 24)

struct Edges {
  double start;
  double delta;
  double last;   // value of the last edge (binCount: stop + 1)
  i64 n;         // number of edges
  int mode;
  int f32;
  int ok;        // 0: these values cannot be binned exactly (too many edges, an edge step of 0 or NaN,
                 // edges that do not increase): Entropy and Uniformity are NaN, never a guess
  RLNFAST_HD double at(i64 i) const {
    if (mode == BinCount && i == n - 1) return last;
    // numpy.linspace / arange: start + i * step with the product rounded first (never one fused multiply-add)
    if (f32) return (double)rl_addf((float)start, rl_mulf((float)i, (float)delta));
    return rl_add(start, rl_mul((double)i, delta));
  }
};

RLNFAST_HD Edges make_edges(double vmin, double vmax, int mode, double bin_width, int bin_count, int f32) {
  Edges e;
  e.mode = mode;
  e.f32 = f32;
  e.ok = 1;
  if (!(vmin <= vmax) || !is_finite(vmin) || !is_finite(vmax)) {  // NaN or inf values: nothing to bin
    e.ok = 0; e.start = 0.0; e.delta = 1.0; e.n = 2; e.last = 1.0; e.f32 = 0;
    return e;
  }
  if (mode == BinWidth) {
    double low, high, next, len;
    if (f32) {
      // NumPy 2 on float32 scalars and a Python float width (NEP 50): min % w, the edges' range, the length
      // ceil((high - low) / w) and the second edge low + w are float32; numpy.arange then fills float64
      // edges low + i * ((low + w) - low).
      float fmin = (float)vmin, fw = (float)bin_width;
      float r = (float)np_remainder((double)fmin, (double)fw);
      float flow = fmin - r;
      float fhigh = (float)vmax + (float)(2.0 * bin_width);
      low = (double)flow;
      high = (double)fhigh;
      next = (double)(float)(flow + fw);
      len = (double)ceilf((fhigh - flow) / fw);
    } else {
      low = vmin - np_remainder(vmin, bin_width);
      high = vmax + 2.0 * bin_width;
      next = low + bin_width;
      len = ceil((high - low) / bin_width);
    }
    e.f32 = 0;                            // numpy.arange's output is float64
    e.delta = next - low;
    e.start = low;
    // Every loop bound is checked before a loop runs: a length that is NaN or beyond the cap, or a step
    // that vanishes at this magnitude (low + w == low), cannot be binned as NumPy bins.
    if (!(len <= (double)RLNFAST_FO_MAX_EDGES) || !(e.delta > 0.0) || !is_finite(e.delta) || !is_finite(high)) {
      e.ok = 0; e.n = 2; e.last = e.start + e.delta;
      return e;
    }
    e.n = len < 1.0 ? 1 : (i64)len;
    e.last = e.at(e.n - 1);
    if (e.n == 1) {  // flat region: pyradiomics makes one bin [e0 - .5, e0 + .5]
      e.start = low - 0.5;
      e.delta = 1.0;
      e.n = 2;
      e.f32 = 0;
      e.last = e.start + 1.0;
    }
  } else {
    double first = vmin, lastv = vmax;
    if (first == lastv) { first -= 0.5; lastv += 0.5; }
    if (f32) { first = (double)(float)first; lastv = (double)(float)lastv; }
    double step = f32 ? (double)(((float)lastv - (float)first) / (float)bin_count)
                      : (lastv - first) / (double)bin_count;
    e.start = first;
    e.delta = step;
    e.n = (i64)bin_count + 1;
    e.last = f32 ? (double)((float)lastv + 1.0f) : lastv + 1.0;
    if (!(step > 0.0) || !is_finite(step) || !is_finite(e.last) || bin_count < 1) { e.ok = 0; return e; }
    // numpy.histogram refuses edges that do not increase ("Too many bins for data range"). Each edge is
    // within about an ulp of the largest magnitude of its exact value: a step of 4 ulps or more cannot
    // repeat an edge; below that every edge is compared (few regions, never more than bin_count steps).
    double mag = fabs(first) > fabs(lastv) ? fabs(first) : fabs(lastv);
    double ulp = f32 ? mag * 1.1920928955078125e-07 : mag * 2.220446049250313e-16;
    if (!(step > 4.0 * ulp)) {
      double prev = e.at(0);
      for (i64 i = 1; i < e.n; ++i) {
        double cur = i == e.n - 1 ? lastv : e.at(i);   // the last edge before numpy adds 1
        if (!(cur > prev)) { e.ok = 0; return e; }
        prev = cur;
      }
    }
  }
  return e;
}

// numpy.digitize(x, edges) for increasing edges: the number of edges <= x. A guess from the step, a few
// steps to correct it, else a binary search: O(log n) whatever the rounding, and never a loop on NaN.
RLNFAST_HD i64 digitize(const Edges& e, double x) {
  double g = floor((x - e.start) / e.delta) + 1.0;
  i64 k = g >= 0.0 ? (g < (double)e.n ? (i64)g : e.n) : 0;   // NaN -> 0
  for (int s = 0; s < 4; ++s) {
    if (k < e.n && e.at(k) <= x) { ++k; continue; }
    if (k > 0 && e.at(k - 1) > x) { --k; continue; }
    return k;
  }
  i64 lo = 0, hi = e.n;   // first index with edge > x
  while (lo < hi) { i64 mid = lo + (hi - lo) / 2; if (e.at(mid) <= x) lo = mid + 1; else hi = mid; }
  return lo;
}

// numpy.percentile(sorted, q, method='linear') on an ascending array of n > 0 values
// (numpy: virtual index (n - 1) * (q / 100), neighbours floor and floor + 1 clipped, then _lerp).
RLNFAST_HD double percentile_sorted(const double* v, i64 n, double q) {
  double vi = (double)(n - 1) * (q / 100.0);
  if (vi >= (double)(n - 1)) return v[n - 1];
  if (vi < 0) return v[0];
  double prev = floor(vi);
  i64 lo = (i64)prev, hi = lo + 1;
  double t = vi - prev;
  double a = v[lo], b = v[hi];
  double d = b - a;
  return t >= 0.5 ? rl_add(b, -rl_mul(d, 1.0 - t)) : rl_add(a, rl_mul(d, t));  // numpy _lerp, unfused
}

// numpy.median of an ascending array.
RLNFAST_HD double median_sorted(const double* v, i64 n) {
  if (n % 2) return v[n / 2];
  return (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

// First index in [0, n) with v[i] >= x (v ascending).
RLNFAST_HD i64 lower_bound(const double* v, i64 n, double x) {
  i64 lo = 0, hi = n;
  while (lo < hi) { i64 mid = lo + (hi - lo) / 2; if (v[mid] < x) lo = mid + 1; else hi = mid; }
  return lo;
}
// First index in [0, n) with v[i] > x.
RLNFAST_HD i64 upper_bound(const double* v, i64 n, double x) {
  i64 lo = 0, hi = n;
  while (lo < hi) { i64 mid = lo + (hi - lo) / 2; if (v[mid] <= x) lo = mid + 1; else hi = mid; }
  return lo;
}

// numpy.sum of a contiguous float64 array, bit for bit (numpy's pairwise_sum: 8 accumulators up to 128
// values, halves beyond). pyradiomics' mean is this sum / n over the voxels in C order; using it makes
// the deviations x - mean, and so the moments of flat regions, come out exactly as in pyradiomics.
RLNFAST_HD double np_pairwise_leaf(const double* a, i64 n) {   // n <= 128
  if (n < 8) {
    double res = 0.0;
    for (i64 i = 0; i < n; ++i) res += a[i];
    return res;
  }
  double r[8];
  for (int j = 0; j < 8; ++j) r[j] = a[j];
  i64 i = 8;
  for (; i < n - (n % 8); i += 8)
    for (int j = 0; j < 8; ++j) r[j] += a[i + j];
  double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  for (; i < n; ++i) res += a[i];
  return res;
}

// numpy's recursion (left half of n/2 rounded down to a multiple of 8, then the rest, then left + right),
// unrolled onto an explicit stack so GPU threads need no call stack.
RLNFAST_HD double np_pairwise_sum(const double* a, i64 n) {
  struct Frame { i64 lo, n; int state; double left; };
  Frame st[64];
  int sp = 0;
  st[0].lo = 0; st[0].n = n; st[0].state = 0; st[0].left = 0.0;
  double ret = 0.0;
  while (sp >= 0) {
    Frame& f = st[sp];
    if (f.n <= 128) {
      ret = np_pairwise_leaf(a + f.lo, f.n);
      --sp;
      continue;
    }
    i64 n2 = f.n / 2;
    n2 -= n2 % 8;
    if (f.state == 0) {
      f.state = 1;
      ++sp;
      st[sp].lo = f.lo; st[sp].n = n2; st[sp].state = 0; st[sp].left = 0.0;
    } else if (f.state == 1) {
      f.left = ret;
      f.state = 2;
      ++sp;
      st[sp].lo = f.lo + n2; st[sp].n = f.n - n2; st[sp].state = 0; st[sp].left = 0.0;
    } else {
      ret = f.left + ret;
      --sp;
    }
  }
  return ret;
}

// Entropy and uniformity terms of one occupied bin holding `count` of `n` voxels.
RLNFAST_HD double entropy_term(i64 count, i64 n) {
  double p = (double)count / (double)n;
  return -p * log2(p + 2.220446049250313e-16);   // eps = numpy.spacing(1)
}
RLNFAST_HD double uniformity_term(i64 count, i64 n) {
  double p = (double)count / (double)n;
  return p * p;
}

// The sums one region needs, gathered by whichever loop or block reduction the backend uses.
struct Sums {
  double energy;   // sum (x + shift)^2
  double m2, m3, m4, mad;  // sums of (x-mean)^2, ^3, ^4, |x-mean|
  double rmad;     // sum |x - mean_r| over the 10-90 percentile subset
  i64 n_r;         // size of that subset
  double entropy, uniformity;
};

// Fill one row of features from the sorted values and the sums (pyradiomics semantics, flat regions included).
RLNFAST_HD void finalize(const double* sorted, i64 n, double mean, const Sums& s, double voxel_volume, double* out) {
  double nn = (double)n;
  out[Energy] = s.energy;
  out[TotalEnergy] = voxel_volume * s.energy;
  out[Entropy] = s.entropy;
  out[Minimum] = sorted[0];
  out[Maximum] = sorted[n - 1];
  double p10 = percentile_sorted(sorted, n, 10.0), p90 = percentile_sorted(sorted, n, 90.0);
  out[Percentile10] = p10;
  out[Percentile90] = p90;
  out[Mean] = mean;
  out[Median] = median_sorted(sorted, n);
  out[InterquartileRange] = percentile_sorted(sorted, n, 75.0) - percentile_sorted(sorted, n, 25.0);
  out[Range] = sorted[n - 1] - sorted[0];
  out[MeanAbsoluteDeviation] = s.mad / nn;
  out[RobustMeanAbsoluteDeviation] = s.n_r > 0 ? s.rmad / (double)s.n_r : RLNFAST_NAN;
  out[RootMeanSquared] = sqrt(s.energy / nn);
  double m2 = s.m2 / nn, m3 = s.m3 / nn, m4 = s.m4 / nn;
  double sd = sqrt(m2);
  out[StandardDeviation] = sd;
  out[Variance] = sd * sd;   // pyradiomics: numpy.nanstd(...) ** 2
  double m2s = m2 == 0.0 ? 1.0 : m2;  // flat region: pyradiomics returns 0 for both
  out[Skewness] = m3 / pow(m2s, 1.5);
  out[Kurtosis] = m4 / (m2s * m2s);
  out[Uniformity] = s.uniformity;
}

// Neumaier compensated summation: NumPy sums pairwise; compensating keeps us within an ulp or two of the
// exact sum, so both agree to far better than the 1e-9 the tests ask.
struct KSum {
  double s = 0.0, c = 0.0;
  RLNFAST_HD void add(double x) {
    double t = s + x;
    if (fabs(s) >= fabs(x)) c += (s - t) + x; else c += (x - t) + s;
    s = t;
  }
  RLNFAST_HD double value() const { return s + c; }
};

}  // namespace fo
}  // namespace rlnfast

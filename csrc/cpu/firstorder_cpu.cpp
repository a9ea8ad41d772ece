// pyradiomics first-order features for every region of a ragged batch, OpenMP over regions.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/firstorder_math.h"
#include "common/ops.h"

namespace rlnfast {
namespace cpu {

// Sorted copy of a region's values. CT intensities are mostly whole numbers in a narrow range: a counting
// sort over [min, max] is then O(n + range) instead of O(n log n); anything else goes to std::sort.
static void sort_values(const double* in, i64 n, std::vector<double>& v, std::vector<int32_t>& counts) {
  double lo = in[0], hi = in[0];
  bool integral = true;
  for (i64 i = 0; i < n; ++i) {
    const double x = in[i];
    lo = x < lo ? x : lo;
    hi = x > hi ? x : hi;
    integral &= (x == std::floor(x));
  }
  v.resize(n);
  const double range = hi - lo;
  if (integral && std::isfinite(range) && range <= 4.0 * (double)n + 4096.0) {
    const i64 R = (i64)range + 1;
    counts.assign(R, 0);
    for (i64 i = 0; i < n; ++i) counts[(i64)(in[i] - lo)]++;
    i64 k = 0;
    for (i64 r = 0; r < R; ++r)
      for (int32_t c = counts[r]; c > 0; --c) v[k++] = lo + (double)r;
    return;
  }
  std::copy(in, in + n, v.begin());
  std::sort(v.begin(), v.end());
}

static void one_region(const double* in, i64 n, const FirstOrderArgs& a, std::vector<double>& v,
                       std::vector<int32_t>& counts, double* out) {
  using namespace fo;
  if (n == 0) {
    for (int k = 0; k < NFeatures; ++k) out[k] = RLNFAST_NAN;
    return;
  }
  for (i64 i = 0; i < n; ++i)
    if (!std::isfinite(in[i])) {   // NaN breaks sorting and binning: a NaN row (the op refuses these first)
      for (int k = 0; k < NFeatures; ++k) out[k] = RLNFAST_NAN;
      return;
    }
  sort_values(in, n, v, counts);
  const double mean = np_pairwise_sum(in, n) / (double)n;   // in: the region's values in C order
  // Moments: four interleaved partial sums per quantity (vectorises; error like NumPy's pairwise sum).
  double en[4] = {0, 0, 0, 0}, m2[4] = {0, 0, 0, 0}, m3[4] = {0, 0, 0, 0}, m4[4] = {0, 0, 0, 0},
         mad[4] = {0, 0, 0, 0};
  const double shift = a.voxel_array_shift;
  for (i64 i = 0; i < n; ++i) {
    const int k = (int)(i & 3);
    const double xs = v[i] + shift;
    en[k] += xs * xs;
    const double d = v[i] - mean, d2 = d * d;
    m2[k] += d2;
    m3[k] += d2 * d;
    m4[k] += d2 * d2;
    mad[k] += std::fabs(d);
  }
  auto total = [](const double* p) { return (p[0] + p[1]) + (p[2] + p[3]); };
  Sums s;
  s.energy = total(en);
  s.m2 = total(m2);
  s.m3 = total(m3);
  s.m4 = total(m4);
  s.mad = total(mad);
  // Robust MAD: the voxels with p10 <= x <= p90 are one contiguous run of the sorted values.
  const double p10 = percentile_sorted(v.data(), n, 10.0), p90 = percentile_sorted(v.data(), n, 90.0);
  i64 lo = lower_bound(v.data(), n, p10), hi = upper_bound(v.data(), n, p90);
  s.n_r = hi - lo;
  KSum rs;
  for (i64 i = lo; i < hi; ++i) rs.add(v[i]);
  const double mean_r = s.n_r > 0 ? rs.value() / (double)s.n_r : 0.0;
  KSum rm;
  for (i64 i = lo; i < hi; ++i) rm.add(std::fabs(v[i] - mean_r));
  s.rmad = rm.value();
  // Histogram: sorted values give non-decreasing bin indices, so bins are runs.
  const Edges e = make_edges(v[0], v[n - 1], a.bin_mode, a.bin_width, a.bin_count, a.edges_f32);
  // Sorted values fill bins in runs: jump from run to run by binary search on the next bin edge.
  KSum ent, uni;
  if (!e.ok) {   // cannot be binned exactly: NaN, and the op says why (rlnfast.ops.firstorder)
    s.entropy = s.uniformity = RLNFAST_NAN;
    finalize(v.data(), n, mean, s, a.voxel_volume, out);
    return;
  }
  for (i64 i = 0; i < n;) {
    const i64 b = digitize(e, v[i]);
    const i64 end = b < e.n ? i + lower_bound(v.data() + i, n - i, e.at(b)) : n;
    ent.add(entropy_term(end - i, n));
    uni.add(uniformity_term(end - i, n));
    i = end;
  }
  s.entropy = ent.value();
  s.uniformity = uni.value();
  finalize(v.data(), n, mean, s, a.voxel_volume, out);
}

void firstorder(const FirstOrderArgs& a) {
  // Large regions first would balance better; dynamic scheduling with small chunks is close enough.
  // One region, or little work in all: no thread team (each region is computed by one thread either way, so
  // the values do not change). Waking a team costs more than such a call, far more on a loaded machine
  // (the drop-in's one-label execute: 12 ms of CPU for a 3000-voxel region with a team, 0.15 ms without).
  const bool parallel = a.n_regions > 1 && a.offsets[a.n_regions] - a.offsets[0] >= (i64(1) << 16);
#pragma omp parallel if (parallel)
  {
    std::vector<double> scratch;
    std::vector<int32_t> counts;
#pragma omp for schedule(dynamic, 4)
    for (i64 r = 0; r < a.n_regions; ++r) {
      const i64 b = a.offsets[r], e = a.offsets[r + 1];
      one_region(a.values + b, e - b, a, scratch, counts, a.out + r * fo::NFeatures);
    }
  }
}

}  // namespace cpu
}  // namespace rlnfast

// The first-order CUDA kernel: one block per region over values already sorted within each region.
// Included by csrc/cuda/firstorder_cuda.cu and compiled by CuPy (NVRTC) from the same file, so both GPU
// backends run identical code; the math itself is firstorder_math.h, shared with the CPU loop.
#pragma once
#include "block_reduce.cuh"
#include "firstorder_math.h"

#define RLNFAST_FO_BLOCK 256

extern "C" __global__ void __launch_bounds__(RLNFAST_FO_BLOCK)
rlnfast_firstorder_regions(const double* original, const double* sorted, const long long* offsets, long long n_regions, int bin_mode,
                           double bin_width, int bin_count, int edges_f32, double shift, double voxel_volume,
                           double* out) {
  using namespace rlnfast;
  using namespace rlnfast::fo;
  __shared__ double sh[RLNFAST_FO_BLOCK];
  const long long r = blockIdx.x;
  if (r >= n_regions) return;
  const int t = threadIdx.x;
  const long long b = offsets[r];
  const long long n = offsets[r + 1] - b;
  const double* v = sorted + b;
  double* o = out + r * NFeatures;
  if (n == 0) {
    if (t < NFeatures) o[t] = RLNFAST_NAN;
    return;
  }
  // The mean as NumPy computes it over the voxels in their original order (one thread: it is sequential).
  __shared__ double mean_sh;
  if (t == 0) mean_sh = np_pairwise_sum(original + b, n) / (double)n;
  __syncthreads();
  const double mean = mean_sh;

  KSum en, m2, m3, m4, mad;
  for (long long i = t; i < n; i += RLNFAST_FO_BLOCK) {
    double xs = v[i] + shift;
    en.add(xs * xs);
    double d = v[i] - mean, d2 = d * d;
    m2.add(d2);
    m3.add(d2 * d);
    m4.add(d2 * d2);
    mad.add(fabs(d));
  }
  Sums s;
  s.energy = block_sum<RLNFAST_FO_BLOCK>(en.value(), sh);
  s.m2 = block_sum<RLNFAST_FO_BLOCK>(m2.value(), sh);
  s.m3 = block_sum<RLNFAST_FO_BLOCK>(m3.value(), sh);
  s.m4 = block_sum<RLNFAST_FO_BLOCK>(m4.value(), sh);
  s.mad = block_sum<RLNFAST_FO_BLOCK>(mad.value(), sh);

  const double p10 = percentile_sorted(v, n, 10.0), p90 = percentile_sorted(v, n, 90.0);
  const long long lo = lower_bound(v, n, p10), hi = upper_bound(v, n, p90);
  s.n_r = hi - lo;
  KSum rs;
  for (long long i = lo + t; i < hi; i += RLNFAST_FO_BLOCK) rs.add(v[i]);
  const double mean_r = s.n_r > 0 ? block_sum<RLNFAST_FO_BLOCK>(rs.value(), sh) / (double)s.n_r : 0.0;
  KSum rm;
  for (long long i = lo + t; i < hi; i += RLNFAST_FO_BLOCK) rm.add(fabs(v[i] - mean_r));
  s.rmad = s.n_r > 0 ? block_sum<RLNFAST_FO_BLOCK>(rm.value(), sh) : 0.0;

  // Occupied bins are runs of the sorted values: the first voxel of each run measures the run's length.
  const Edges e = make_edges(v[0], v[n - 1], bin_mode, bin_width, bin_count, edges_f32);
  KSum ent, uni;
  for (long long i = e.ok ? t : n; i < n; i += RLNFAST_FO_BLOCK) {   // !e.ok: NaN below
    long long bi = digitize(e, v[i]);
    if (i > 0 && digitize(e, v[i - 1]) == bi) continue;
    long long end = bi < e.n ? i + lower_bound(v + i, n - i, e.at(bi)) : n;
    ent.add(entropy_term(end - i, n));
    uni.add(uniformity_term(end - i, n));
  }
  s.entropy = block_sum<RLNFAST_FO_BLOCK>(ent.value(), sh);
  s.uniformity = block_sum<RLNFAST_FO_BLOCK>(uni.value(), sh);
  if (!e.ok) s.entropy = s.uniformity = RLNFAST_NAN;
  if (t == 0) finalize(v, n, mean, s, voxel_volume, o);
}

// Validation of device offsets before anything reads through them: bad[0] = 1 unless offsets run
// non-decreasing from 0 to n_values (one grid-stride pass; the launcher reads the flag with n_values).
extern "C" __global__ void __launch_bounds__(RLNFAST_FO_BLOCK)
rlnfast_firstorder_check_offsets(const long long* offsets, long long n_regions, long long n_values, int* bad) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i <= n_regions;
       i += (long long)gridDim.x * blockDim.x) {
    const long long o = offsets[i];
    const bool ok = (i == 0 ? o == 0 : o >= offsets[i - 1]) && (i < n_regions || o == n_values) && o <= n_values;
    if (!ok) atomicMax(bad, 1);
  }
}

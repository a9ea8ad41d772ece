// Kernels of the device-resident pipeline (csrc/cuda/pipeline_cuda.cu): per-label voxel counts and bounding
// boxes of a label map, and the gather of every region's voxels (Original, E, DEM values in C order, as
// image[label_map == label]) with its bounding-box crops (mask, Original and E intensities) for fractal DBC.
#pragma once
#include "dem_math.h"

#define RLNFAST_PL_BLOCK 256
// Columns of a region row (int64): label, bbox z0 y0 x0 z1 y1 x1 (inclusive), first gathered value, first crop voxel.
#define RLNFAST_PL_RCOL 9

namespace rlnfast {
namespace pl {

// Per label 1..max_label: voxels, finite CT voxels, and the bounding box (atomics; lo preset to a large
// value, hi to -1). Grid-stride over the volume.
template <class T, class L>
__device__ __forceinline__ void label_stats(const T* __restrict__ ct, const L* __restrict__ lab, long long ny,
                                            long long nx, long long n, long long max_label,
                                            unsigned long long* count, unsigned long long* finite, long long* lo,
                                            long long* hi) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const long long l = (long long)lab[i];
    if (l <= 0 || l > max_label) continue;
    atomicAdd(count + l, 1ULL);
    const double v = (double)ct[i];
    if (v - v == 0.0) atomicAdd(finite + l, 1ULL);
    const long long x = i % nx, zy = i / nx, y = zy % ny, z = zy / ny;
    atomicMin(lo + 3 * l, z);
    atomicMin(lo + 3 * l + 1, y);
    atomicMin(lo + 3 * l + 2, x);
    atomicMax(hi + 3 * l, z);
    atomicMax(hi + 3 * l + 1, y);
    atomicMax(hi + 3 * l + 2, x);
  }
}

// One block per region: the region's bounding box in C order, split into one contiguous chunk per thread;
// a block scan of the chunks' region-voxel counts gives every thread its first output position, so the
// gathered values keep C order (what the CPU gather and NumPy's image[mask] give). Writes, for value
// streams k >= 0, vals[k * total + pos]: Original (k_o), E (k_e, with pe) and DEM (k_d, read from the DEM
// crop dem_crop); and, when non-null, the crops: mask (1 = region voxel), Original and E intensities.
template <class T, class L>
__device__ __forceinline__ void gather(const T* __restrict__ ct, const L* __restrict__ lab, long long ny, long long nx,
                                      const long long* __restrict__ rows, long long n_regions, long long total,
                                      int k_o, int k_e, int k_d, dem::ElasticityParams pe, double* __restrict__ vals,
                                      unsigned char* __restrict__ mask, double* __restrict__ crop_o,
                                      double* __restrict__ crop_e, const double* __restrict__ dem_crop) {
  __shared__ long long part[RLNFAST_PL_BLOCK];
  const long long r = blockIdx.x;
  if (r >= n_regions) return;
  const long long* d = rows + r * RLNFAST_PL_RCOL;
  const long long label = d[0];
  const long long z0 = d[1], y0 = d[2], x0 = d[3];
  const long long bny = d[5] - y0 + 1, bnx = d[6] - x0 + 1;
  const long long nv = d[1] > d[4] ? 0 : (d[4] - z0 + 1) * bny * bnx;
  const long long voff = d[7], coff = d[8];
  const int t = threadIdx.x;
  const long long chunk = (nv + RLNFAST_PL_BLOCK - 1) / RLNFAST_PL_BLOCK;
  const long long a = t * chunk < nv ? t * chunk : nv, b = a + chunk < nv ? a + chunk : nv;
  long long c = 0;
  for (long long j = a; j < b; ++j) {
    const long long lx = j % bnx, lzy = j / bnx, ly = lzy % bny, lz = lzy / bny;
    const long long idx = ((z0 + lz) * ny + y0 + ly) * nx + x0 + lx;
    c += (long long)lab[idx] == label;
  }
  part[t] = c;
  __syncthreads();
  if (t == 0) {
    long long s = 0;
    for (int k = 0; k < RLNFAST_PL_BLOCK; ++k) {
      const long long v = part[k];
      part[k] = s;
      s += v;
    }
  }
  __syncthreads();
  long long pos = voff + part[t];
  for (long long j = a; j < b; ++j) {
    const long long lx = j % bnx, lzy = j / bnx, ly = lzy % bny, lz = lzy / bny;
    const long long idx = ((z0 + lz) * ny + y0 + ly) * nx + x0 + lx;
    const double v = (double)ct[idx];
    const bool m = (long long)lab[idx] == label;
    if (mask) mask[coff + j] = m ? 1 : 0;
    if (crop_o) crop_o[coff + j] = v;
    if (crop_e) crop_e[coff + j] = dem::elasticity(v, pe);
    if (m) {
      if (k_o >= 0) vals[k_o * total + pos] = v;
      if (k_e >= 0) vals[k_e * total + pos] = dem::elasticity(v, pe);
      if (k_d >= 0) vals[k_d * total + pos] = dem_crop[coff + j];
      ++pos;
    }
  }
}

}  // namespace pl
}  // namespace rlnfast

#define RLNFAST_PL_KERNELS(TS, T, LS, L)                                                                           \
  extern "C" __global__ void __launch_bounds__(RLNFAST_PL_BLOCK) rlnfast_pl_stats_##TS##_##LS(                     \
      const T* ct, const L* lab, long long ny, long long nx, long long n, long long max_label,                     \
      unsigned long long* count, unsigned long long* finite, long long* lo, long long* hi) {                       \
    rlnfast::pl::label_stats<T, L>(ct, lab, ny, nx, n, max_label, count, finite, lo, hi);                          \
  }                                                                                                                \
  extern "C" __global__ void __launch_bounds__(RLNFAST_PL_BLOCK) rlnfast_pl_gather_##TS##_##LS(                    \
      const T* ct, const L* lab, long long ny, long long nx, const long long* rows, long long n_regions,           \
      long long total, int k_o, int k_e, int k_d, double clip_lo, double clip_hi, double rho_w, double gamma,      \
      double* vals, unsigned char* mask, double* crop_o, double* crop_e, const double* dem_crop) {                 \
    rlnfast::dem::ElasticityParams pe;                                                                             \
    pe.clip_lo = clip_lo;                                                                                          \
    pe.clip_hi = clip_hi;                                                                                          \
    pe.rho_w = rho_w;                                                                                              \
    pe.gamma = gamma;                                                                                              \
    rlnfast::pl::gather<T, L>(ct, lab, ny, nx, rows, n_regions, total, k_o, k_e, k_d, pe, vals, mask, crop_o,      \
                              crop_e, dem_crop);                                                                   \
  }

// Label maps travel in their smallest type: uint8, uint16 or int32 (the pipeline casts on the host).
#define RLNFAST_PL_FOR_EACH_LABEL(M, TS, T) M(TS, T, u8, unsigned char) M(TS, T, u16, unsigned short) M(TS, T, i32, int)
#define RLNFAST_PL_FOR_CT(TS, T) RLNFAST_PL_FOR_EACH_LABEL(RLNFAST_PL_KERNELS, TS, T)
// CT dtypes: those of the DEM kernels (common/dem_kernel.cuh RLNFAST_DEM_FOR_EACH_DTYPE).
#define RLNFAST_PL_FOR_EACH_CT(M) \
  M(u8, unsigned char) M(i8, signed char) M(u16, unsigned short) M(i16, short) M(u32, unsigned int) M(i32, int) \
  M(i64, long long) M(f32, float) M(f64, double)
RLNFAST_PL_FOR_EACH_CT(RLNFAST_PL_FOR_CT)

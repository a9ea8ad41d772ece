// The fractal box-counting CUDA kernels: scatter voxels of region crops into per-(region, size) box
// scratch, then reduce each pair's boxes to counts. Included by csrc/cuda/fractal_cuda.cu and compiled by
// CuPy (NVRTC) from the same file; the voxel-to-box arithmetic is fractal_math.h, shared with the CPU.
//
// Work layout (built on the host, identically by the CUDA and CuPy paths):
//   tiles     : (pair, first voxel) of RLNFAST_FR_TILE consecutive crop voxels; one block per tile.
//   box_off   : [n_pairs + 1] offsets of each pair's boxes in the scratch arrays.
// Scratch per box: flag_mask, flag_surf (uint8, 0 initially), mcount (int, 0), qmin (int, INT_MAX),
// qmax (int, -1).
#pragma once
#include "block_reduce.cuh"
#include "fractal_math.h"

#define RLNFAST_FR_BLOCK 256
#define RLNFAST_FR_TILE 2048

// Box occupancy of the region (flag_mask), of its boundary voxels (flag_surf) and centre counts (mcount).
extern "C" __global__ void __launch_bounds__(RLNFAST_FR_BLOCK)
rlnfast_fractal_boxes_scatter(const long long* tile_pair, const long long* tile_start, long long n_tiles,
                              const unsigned char* mask, const long long* offsets, const long long* dims,
                              long long Dz, long long Dy, long long Dx, const long long* pair_region,
                              const long long* pair_size, const long long* box_off, unsigned char* flag_mask,
                              unsigned char* flag_surf, int* mcount) {
  using namespace rlnfast;
  using namespace rlnfast::fr;
  const long long tile = blockIdx.x;
  if (tile >= n_tiles) return;
  const long long p = tile_pair[tile];
  const long long r = pair_region[p];
  const long long S = pair_size[p];
  const long long nz = dims[3 * r], ny = dims[3 * r + 1], nx = dims[3 * r + 2];
  const long long nvox = nz * ny * nx;
  const unsigned char* m = mask + offsets[r];
  const long long gy = grid_boxes(ny, Dy, S), gx = grid_boxes(nx, Dx, S);
  const long long base = box_off[p];
  const long long start = tile_start[tile];
  long long end = start + RLNFAST_FR_TILE;
  if (end > nvox) end = nvox;
  for (long long i = start + threadIdx.x; i < end; i += RLNFAST_FR_BLOCK) {
    if (!m[i]) continue;
    const long long x = i % nx, y = (i / nx) % ny, z = i / (nx * ny);
    const long long c = (box_centre(z, Dz, S) * gy + box_centre(y, Dy, S)) * gx + box_centre(x, Dx, S);
    atomicAdd(mcount + base + c, 1);
    const bool bnd = is_boundary(m, nz, ny, nx, z, y, x);
    const long long z0 = box_lo(z, Dz, S), z1 = box_hi(z, Dz, S);
    const long long y0 = box_lo(y, Dy, S), y1 = box_hi(y, Dy, S);
    const long long x0 = box_lo(x, Dx, S), x1 = box_hi(x, Dx, S);
    for (long long bz = z0; bz <= z1; ++bz)
      for (long long by = y0; by <= y1; ++by)
        for (long long bx = x0; bx <= x1; ++bx) {
          const long long b = base + (bz * gy + by) * gx + bx;
          flag_mask[b] = 1;   // racing stores of the same value: benign
          if (bnd) flag_surf[b] = 1;
        }
  }
}

// One block per pair: count occupied boxes and sum M^2.
extern "C" __global__ void __launch_bounds__(RLNFAST_FR_BLOCK)
rlnfast_fractal_boxes_reduce(long long n_pairs, const long long* box_off, const unsigned char* flag_mask,
                             const unsigned char* flag_surf, const int* mcount, long long* n_mask,
                             long long* n_surface, long long* sum_m2) {
  using namespace rlnfast::fr;
  __shared__ long long sh[RLNFAST_FR_BLOCK];
  const long long p = blockIdx.x;
  if (p >= n_pairs) return;
  long long a = 0, b = 0, c = 0;
  for (long long i = box_off[p] + threadIdx.x; i < box_off[p + 1]; i += RLNFAST_FR_BLOCK) {
    a += flag_mask[i];
    b += flag_surf[i];
    const long long mm = mcount[i];
    c += mm * mm;
  }
  a = rlnfast::block_sum<RLNFAST_FR_BLOCK>(a, sh);
  b = rlnfast::block_sum<RLNFAST_FR_BLOCK>(b, sh);
  c = rlnfast::block_sum<RLNFAST_FR_BLOCK>(c, sh);
  if (threadIdx.x == 0) {
    n_mask[p] = a;
    n_surface[p] = b;
    sum_m2[p] = c;
  }
}

// One block per region: intensity range over the region's voxels.
extern "C" __global__ void __launch_bounds__(RLNFAST_FR_BLOCK)
rlnfast_fractal_minmax(long long n_regions, const unsigned char* mask, const double* values,
                       const long long* offsets, double* vmin, double* vmax) {
  __shared__ double lo[RLNFAST_FR_BLOCK];
  __shared__ double hi[RLNFAST_FR_BLOCK];
  __shared__ int any[RLNFAST_FR_BLOCK];
  const long long r = blockIdx.x;
  if (r >= n_regions) return;
  const int t = threadIdx.x;
  double a = 0.0, b = 0.0;
  int found = 0;
  for (long long i = offsets[r] + t; i < offsets[r + 1]; i += RLNFAST_FR_BLOCK) {
    if (!mask[i]) continue;
    const double v = values[i];
    if (!found || v < a) a = v;
    if (!found || v > b) b = v;
    found = 1;
  }
  lo[t] = a;
  hi[t] = b;
  any[t] = found;
  __syncthreads();
  for (int s = RLNFAST_FR_BLOCK / 2; s > 0; s >>= 1) {
    if (t < s && any[t + s]) {
      if (!any[t] || lo[t + s] < lo[t]) lo[t] = lo[t + s];
      if (!any[t] || hi[t + s] > hi[t]) hi[t] = hi[t + s];
      any[t] = 1;
    }
    __syncthreads();
  }
  if (t == 0) {
    vmin[r] = any[0] ? lo[0] : RLNFAST_NAN;
    vmax[r] = any[0] ? hi[0] : RLNFAST_NAN;
  }
}

// DBC levels: per box, the smallest and largest level floor(g / h) of the region voxel centres it holds.
extern "C" __global__ void __launch_bounds__(RLNFAST_FR_BLOCK)
rlnfast_fractal_dbc_scatter(const long long* tile_pair, const long long* tile_start, long long n_tiles,
                            const unsigned char* mask, const double* values, const long long* offsets,
                            const long long* dims, long long Dz, long long Dy, long long Dx,
                            const long long* pair_region, const long long* pair_size, const long long* box_off,
                            const double* vmin, const double* vmax, int grey_levels, int* qmin, int* qmax) {
  using namespace rlnfast;
  using namespace rlnfast::fr;
  const long long tile = blockIdx.x;
  if (tile >= n_tiles) return;
  const long long p = tile_pair[tile];
  const long long r = pair_region[p];
  const long long S = pair_size[p];
  const long long nz = dims[3 * r], ny = dims[3 * r + 1], nx = dims[3 * r + 2];
  const long long nvox = nz * ny * nx;
  const long long L = extent_max(nz, ny, nx, Dz, Dy, Dx);
  const double h = dbc_height(S, L, grey_levels);
  const double lo = vmin[r], hi = vmax[r];
  const unsigned char* m = mask + offsets[r];
  const double* v = values + offsets[r];
  const long long gy = grid_boxes(ny, Dy, S), gx = grid_boxes(nx, Dx, S);
  const long long base = box_off[p];
  const long long start = tile_start[tile];
  long long end = start + RLNFAST_FR_TILE;
  if (end > nvox) end = nvox;
  for (long long i = start + threadIdx.x; i < end; i += RLNFAST_FR_BLOCK) {
    if (!m[i]) continue;
    const long long x = i % nx, y = (i / nx) % ny, z = i / (nx * ny);
    const long long c = (box_centre(z, Dz, S) * gy + box_centre(y, Dy, S)) * gx + box_centre(x, Dx, S);
    const int q = (int)dbc_level(grey(v[i], lo, hi, grey_levels), h);
    atomicMin(qmin + base + c, q);
    atomicMax(qmax + base + c, q);
  }
}

// One block per pair: N(s) = sum over occupied boxes of qmax - qmin + 1.
extern "C" __global__ void __launch_bounds__(RLNFAST_FR_BLOCK)
rlnfast_fractal_dbc_reduce(long long n_pairs, const long long* box_off, const int* qmin, const int* qmax,
                           long long* n_dbc) {
  using namespace rlnfast::fr;
  __shared__ long long sh[RLNFAST_FR_BLOCK];
  const long long p = blockIdx.x;
  if (p >= n_pairs) return;
  long long a = 0;
  for (long long i = box_off[p] + threadIdx.x; i < box_off[p + 1]; i += RLNFAST_FR_BLOCK)
    if (qmax[i] >= 0) a += (long long)(qmax[i] - qmin[i]) + 1;
  a = rlnfast::block_sum<RLNFAST_FR_BLOCK>(a, sh);
  if (threadIdx.x == 0) n_dbc[p] = a;
}

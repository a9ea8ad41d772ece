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

namespace rlnfast {
namespace fr {

// The preamble of the scatter kernels (one block per tile): the tile's (region, box size) pair, the region's
// crop and box grid, and the tile's voxel range, read once by tile_of(); for_each_voxel() walks this thread's
// share of the tile's region voxels.
struct Tile {
  long long p, r, S;          // pair, its region, its box size
  long long nz, ny, nx;       // crop shape
  long long Dz, Dy, Dx;       // voxel spacing (units)
  long long gy, gx;           // grid boxes along y and x
  long long off;              // offsets[r]: the crop's first voxel in the ragged batch
  const unsigned char* m;     // the crop's mask (mask + off)
  long long base;             // box_off[p]: the pair's first box in the scratch arrays
  long long start, end;       // crop voxels [start, end) of this tile

  // f(i, z, y, x, c) for every region voxel i of the tile (crop index, C order) this thread handles, with its
  // crop coordinates and c the scratch index (base + grid box) of the box holding its centre.
  template <class F>
  __device__ __forceinline__ void for_each_voxel(F&& f) const {
    for (long long i = start + threadIdx.x; i < end; i += RLNFAST_FR_BLOCK) {
      if (!m[i]) continue;
      const long long x = i % nx, y = (i / nx) % ny, z = i / (nx * ny);
      const long long c = (box_centre(z, Dz, S) * gy + box_centre(y, Dy, S)) * gx + box_centre(x, Dx, S);
      f(i, z, y, x, base + c);
    }
  }
};

// The tile of this block (blockIdx.x); false for a block past the last tile.
__device__ __forceinline__ bool tile_of(Tile& t, const long long* tile_pair, const long long* tile_start,
                                        long long n_tiles, const unsigned char* mask, const long long* offsets,
                                        const long long* dims, long long Dz, long long Dy, long long Dx,
                                        const long long* pair_region, const long long* pair_size,
                                        const long long* box_off) {
  const long long tile = blockIdx.x;
  if (tile >= n_tiles) return false;
  t.p = tile_pair[tile];
  t.r = pair_region[t.p];
  t.S = pair_size[t.p];
  t.nz = dims[3 * t.r];
  t.ny = dims[3 * t.r + 1];
  t.nx = dims[3 * t.r + 2];
  t.Dz = Dz;
  t.Dy = Dy;
  t.Dx = Dx;
  t.gy = grid_boxes(t.ny, Dy, t.S);
  t.gx = grid_boxes(t.nx, Dx, t.S);
  t.off = offsets[t.r];
  t.m = mask + t.off;
  t.base = box_off[t.p];
  t.start = tile_start[tile];
  const long long nvox = t.nz * t.ny * t.nx;
  t.end = t.start + RLNFAST_FR_TILE;
  if (t.end > nvox) t.end = nvox;
  return true;
}

// The preamble of the block-per-item kernels (one block per pair or per region): the item k of this block
// (blockIdx.x) and its range [lo, hi) = [off[k], off[k + 1]); false for a block past the last item.
__device__ __forceinline__ bool block_span(long long n, const long long* off, long long& k, long long& lo,
                                           long long& hi) {
  k = blockIdx.x;
  if (k >= n) return false;
  lo = off[k];
  hi = off[k + 1];
  return true;
}

}  // namespace fr
}  // namespace rlnfast

// Box occupancy of the region (flag_mask), of its boundary voxels (flag_surf) and centre counts (mcount).
extern "C" __global__ void __launch_bounds__(RLNFAST_FR_BLOCK)
rlnfast_fractal_boxes_scatter(const long long* tile_pair, const long long* tile_start, long long n_tiles,
                              const unsigned char* mask, const long long* offsets, const long long* dims,
                              long long Dz, long long Dy, long long Dx, const long long* pair_region,
                              const long long* pair_size, const long long* box_off, unsigned char* flag_mask,
                              unsigned char* flag_surf, int* mcount) {
  using namespace rlnfast;
  using namespace rlnfast::fr;
  Tile t;
  if (!tile_of(t, tile_pair, tile_start, n_tiles, mask, offsets, dims, Dz, Dy, Dx, pair_region, pair_size, box_off))
    return;
  t.for_each_voxel([&](long long, long long z, long long y, long long x, long long c) {
    atomicAdd(mcount + c, 1);
    const bool bnd = is_boundary(t.m, t.nz, t.ny, t.nx, z, y, x);
    const long long z0 = box_lo(z, Dz, t.S), z1 = box_hi(z, Dz, t.S);
    const long long y0 = box_lo(y, Dy, t.S), y1 = box_hi(y, Dy, t.S);
    const long long x0 = box_lo(x, Dx, t.S), x1 = box_hi(x, Dx, t.S);
    for (long long bz = z0; bz <= z1; ++bz)
      for (long long by = y0; by <= y1; ++by)
        for (long long bx = x0; bx <= x1; ++bx) {
          const long long b = t.base + (bz * t.gy + by) * t.gx + bx;
          flag_mask[b] = 1;   // racing stores of the same value: benign
          if (bnd) flag_surf[b] = 1;
        }
  });
}

// One block per pair: count occupied boxes and sum M^2.
extern "C" __global__ void __launch_bounds__(RLNFAST_FR_BLOCK)
rlnfast_fractal_boxes_reduce(long long n_pairs, const long long* box_off, const unsigned char* flag_mask,
                             const unsigned char* flag_surf, const int* mcount, long long* n_mask,
                             long long* n_surface, long long* sum_m2) {
  using namespace rlnfast::fr;
  __shared__ long long sh[RLNFAST_FR_BLOCK];
  long long p, lo, hi;
  if (!block_span(n_pairs, box_off, p, lo, hi)) return;
  long long a = 0, b = 0, c = 0;
  for (long long i = lo + threadIdx.x; i < hi; i += RLNFAST_FR_BLOCK) {
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
  using namespace rlnfast::fr;
  __shared__ double lo[RLNFAST_FR_BLOCK];
  __shared__ double hi[RLNFAST_FR_BLOCK];
  __shared__ int any[RLNFAST_FR_BLOCK];
  long long r, first, last;
  if (!block_span(n_regions, offsets, r, first, last)) return;
  const int t = threadIdx.x;
  double a = 0.0, b = 0.0;
  int found = 0;
  for (long long i = first + t; i < last; i += RLNFAST_FR_BLOCK) {
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
  Tile t;
  if (!tile_of(t, tile_pair, tile_start, n_tiles, mask, offsets, dims, Dz, Dy, Dx, pair_region, pair_size, box_off))
    return;
  const long long L = extent_max(t.nz, t.ny, t.nx, Dz, Dy, Dx);
  const double h = dbc_height(t.S, L, grey_levels);
  const double lo = vmin[t.r], hi = vmax[t.r];
  const double* v = values + t.off;
  t.for_each_voxel([&](long long i, long long, long long, long long, long long c) {
    const int q = (int)dbc_level(grey(v[i], lo, hi, grey_levels), h);
    atomicMin(qmin + c, q);
    atomicMax(qmax + c, q);
  });
}

// One block per pair: N(s) = sum over occupied boxes of qmax - qmin + 1.
extern "C" __global__ void __launch_bounds__(RLNFAST_FR_BLOCK)
rlnfast_fractal_dbc_reduce(long long n_pairs, const long long* box_off, const int* qmin, const int* qmax,
                           long long* n_dbc) {
  using namespace rlnfast::fr;
  __shared__ long long sh[RLNFAST_FR_BLOCK];
  long long p, lo, hi;
  if (!block_span(n_pairs, box_off, p, lo, hi)) return;
  long long a = 0;
  for (long long i = lo + threadIdx.x; i < hi; i += RLNFAST_FR_BLOCK)
    if (qmax[i] >= 0) a += (long long)(qmax[i] - qmin[i]) + 1;
  a = rlnfast::block_sum<RLNFAST_FR_BLOCK>(a, sh);
  if (threadIdx.x == 0) n_dbc[p] = a;
}

// Fractal box-counting math (features.md "Fractal features"), shared by the C++ CPU loops, the CUDA kernels
// and the CuPy (NVRTC) kernels, so that every backend maps voxels to boxes with the very same arithmetic.
//
// Exactness: lengths are whole numbers of "units" (fr::kUnitsPerMm units = 1 mm, i.e. 1 nm; spacings and
// box sizes are rounded to that grid once, in Python). Voxel i along an axis spans [i*D, (i+1)*D) and box j
// spans [j*S, (j+1)*S), so "voxel intersects box" and "centre lies in box" are integer comparisons: no
// rounding can make a 0.7 mm voxel straddle a 1.4 mm box edge. The only floating-point step is DBC's grey
// level, written as one fixed sequence of IEEE operations (no multiply-add that a compiler could fuse),
// which NumPy, the CPU and the GPU evaluate identically.
#pragma once
#include "hd.h"

namespace rlnfast {
namespace fr {

// Length units per millimetre (1 unit = 1 nm).
#define RLNFAST_FR_UNITS_PER_MM 1000000LL

// First box intersected by voxel i: floor(i*D / S).
RLNFAST_HD i64 box_lo(i64 i, i64 D, i64 S) { return (i * D) / S; }
// Last box intersected by voxel i: ceil((i+1)*D / S) - 1 (the voxel's upper face is open).
RLNFAST_HD i64 box_hi(i64 i, i64 D, i64 S) { return ((i + 1) * D + S - 1) / S - 1; }
// Box holding the centre (i + 1/2) * D of voxel i: floor((2i+1)*D / (2S)).
RLNFAST_HD i64 box_centre(i64 i, i64 D, i64 S) { return ((2 * i + 1) * D) / (2 * S); }
// Grid boxes along an axis of n voxels: ceil(n*D / S) (the grid covers the bounding box).
RLNFAST_HD i64 grid_boxes(i64 n, i64 D, i64 S) { return (n * D + S - 1) / S; }
// L: the largest physical extent of a bounding box of nz x ny x nx voxels, in units.
RLNFAST_HD i64 extent_max(i64 nz, i64 ny, i64 nx, i64 Dz, i64 Dy, i64 Dx) {
  i64 a = nz * Dz, b = ny * Dy, c = nx * Dx;
  i64 m = a > b ? a : b;
  return m > c ? m : c;
}

// A region voxel with a 6-neighbour outside the region; the crop is the bounding box, so a neighbour
// outside the crop is outside the region (and outside the volume counts as outside).
RLNFAST_HD bool is_boundary(const unsigned char* m, i64 nz, i64 ny, i64 nx, i64 z, i64 y, i64 x) {
  const i64 i = (z * ny + y) * nx + x;
  if (z == 0 || z == nz - 1 || y == 0 || y == ny - 1 || x == 0 || x == nx - 1) return true;
  return !m[i - ny * nx] || !m[i + ny * nx] || !m[i - nx] || !m[i + nx] || !m[i - 1] || !m[i + 1];
}

// DBC grey level of an intensity: g = ((v - vmin) * (G - 1)) / (vmax - vmin) in [0, G-1]; 0 when the
// region is constant (then every box has n = 1).
RLNFAST_HD double grey(double v, double vmin, double vmax, int G) {
  if (!(vmax > vmin)) return 0.0;
  return ((v - vmin) * (double)(G - 1)) / (vmax - vmin);
}
// DBC box height h = s * G / L (s, L in the same units).
RLNFAST_HD double dbc_height(i64 S, i64 L, int G) { return ((double)S * (double)G) / (double)L; }
// Level index floor(g / h) of a grey level.
RLNFAST_HD i64 dbc_level(double g, double h) { return (i64)floor(g / h); }

}  // namespace fr
}  // namespace rlnfast

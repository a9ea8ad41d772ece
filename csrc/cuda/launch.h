// Launch helpers on device pointers that the device-resident pipeline (csrc/cuda/pipeline_cuda.cu) shares with
// the per-op launchers: each op's kernels are defined (extern "C") in the one .cu file that includes its
// *_kernel.cuh, so the pipeline launches them through these functions, never across translation units.
// Nothing here allocates, copies or synchronises: the caller owns every buffer and the stream.
#pragma once
#include <cstddef>
#include <vector>

#include "common/ops.h"

namespace rlnfast {
namespace cuda {

// ---- firstorder (firstorder_cuda.cu) ------------------------------------------------------------------------
// CUB segmented sort of n_segments segments [offsets[s], offsets[s + 1]) of `in` into `out`; temp == nullptr:
// only sets temp_bytes.
void segmented_sort(void* temp, size_t& temp_bytes, const double* in, double* out, i64 n_values, i64 n_segments,
                    const i64* offsets, void* stream);
// One block per region over values sorted within each region (offsets are absolute into original/sorted).
void firstorder_sorted(const double* original, const double* sorted, const i64* offsets, i64 n_regions,
                       int bin_mode, double bin_width, int bin_count, int edges_f32, double shift,
                       double voxel_volume, double* out, void* stream);

// ---- DEM (dem_cuda.cu) --------------------------------------------------------------------------------------
// The host plan of float64 DEM passes on boxes: box descriptors (RLNFAST_DEM_NCOL int64 each), the packed
// weights [w0z, w1z, w0y, w1y, w0x, w1x] and their offsets, the radii, and the packed sizes.
struct DemPlan {
  std::vector<long long> desc;
  std::vector<double> w;
  size_t woff[6];
  int r[3];
  long long n_vox = 0;    // voxels of the expanded boxes (the intermediates' length)
  long long n_rows = 0;   // (z, y) rows of the expanded boxes
  long long n_out = 0;    // output voxels
};
DemPlan dem_plan(const DemArgs& a);   // a.ct (dims only), spacing, sigma, boxes, n_boxes, out_offsets
// The three float64 passes; desc, w, A..X, first_nan (n_boxes, preset to ~0) and out are device pointers.
void dem_passes_f64(const DemArgs& a, const DemPlan& pl, const long long* desc, const double* w, double* A, double* B,
                    double* C, double* Y, double* X, unsigned long long* first_nan, double* out);

// ---- fractal (fractal_cuda.cu) ------------------------------------------------------------------------------
// Box offsets per (region, size) pair and the voxel tiles, from the crops' shapes.
struct FractalPlan {
  std::vector<i64> box_off, tile_pair, tile_start;
};
FractalPlan fractal_plan(const i64* dims, const i64 spacing[3], const i64* pair_region, const i64* pair_size,
                         i64 n_pairs);
// Device pointers throughout. Box scratch (fm, fs, mc: n_boxes) is zeroed here (stream-ordered memsets).
void fractal_boxes_device(i64 n_pairs, i64 n_tiles, i64 n_boxes, const i64* tp, const i64* ts, const unsigned char* mask,
                          const i64* offsets, const i64* dims, const i64 spacing[3], const i64* preg, const i64* psize,
                          const i64* boff, unsigned char* fm, unsigned char* fs, int* mc, i64* n_mask, i64* n_surface,
                          i64* sum_m2, void* stream);
// DBC of intensity crops `values` (crops' layout); qmin/qmax (n_boxes) are initialised here.
void fractal_dbc_device(i64 n_regions, i64 n_pairs, i64 n_tiles, i64 n_boxes, const i64* tp, const i64* ts,
                        const unsigned char* mask, const double* values, const i64* offsets, const i64* dims,
                        const i64 spacing[3], const i64* preg, const i64* psize, const i64* boff, int grey_levels,
                        int* qmin, int* qmax, double* vmin, double* vmax, i64* n_dbc, void* stream);

}  // namespace cuda
}  // namespace rlnfast

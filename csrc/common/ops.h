// The contract of every op: one args struct, one validate(), one signature for rlnfast::cpu and
// rlnfast::cuda. Changing a struct stops both backends from compiling until both follow.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "hd.h"

namespace rlnfast {

// Element types the region ops accept for images and label maps (template dispatch happens in bindings).
enum class DType : int32_t { u8, i8, u16, i16, u32, i32, i64, f32, f64 };

// A C-contiguous 3-D volume (z, y, x) of any DType.
struct VolumeView {
  const void* data;
  DType dtype;
  i64 nz, ny, nx;
  i64 size() const { return nz * ny * nx; }
};

// ---- regions: one pass over a label map ----------------------------------------------------------
// Counts voxels and bounding boxes of every label 1..max_label (max_label: a cap; tables grow to the
// largest label present); labels <= 0 are background. Results: per-thread RegionTable, merged.
struct RegionStatsArgs {
  VolumeView labels;        // integer dtype
  i64 max_label;
};
std::string validate(const RegionStatsArgs& a);

// Gathers the image values of the selected labels into one ragged batch (C order inside each region, as
// image[mask] in NumPy). With bbox, region r scans only its box for labels_of_region[r]; without,
// region_of[label] (the region index or -1) drives one pass over the volume.
struct GatherArgs {
  VolumeView image;
  VolumeView labels;
  const int32_t* region_of;   // [max_label + 1]
  i64 max_label;
  const i64* labels_of_region;  // [n_regions]
  const i64* bbox;            // [n_regions, 6] inclusive boxes, or nullptr
  const i64* offsets;         // [n_regions + 1]
  i64 n_regions;
  double* values;             // [offsets[n_regions]]
  i64* first_nonfinite;       // [n_regions]: flat index of the first NaN/inf voxel, -1, or kCountMismatch
};
// first_nonfinite of a region whose voxels in the label map are not offsets[r+1] - offsets[r] (the label map
// changed after its regions were counted): its values are incomplete and must not be used.
constexpr i64 kCountMismatch = -2;
std::string validate(const GatherArgs& a);

// ---- firstorder: pyradiomics first-order features of every region in a ragged batch ---------------
struct FirstOrderArgs {
  const double* values;     // ragged values; host or device pointer depending on the backend
  const i64* offsets;       // [n_regions + 1]: non-decreasing, from 0 to n_values
  i64 n_regions;
  i64 n_values;             // length of values (the CUDA backend checks the device offsets against it)
  int32_t bin_mode;         // fo::BinWidth or fo::BinCount
  double bin_width;
  int32_t bin_count;
  int32_t edges_f32;        // binCount edges in float32 (pyradiomics on a float32 image)
  double voxel_array_shift;
  double voxel_volume;      // mm^3, for TotalEnergy
  double* out;              // [n_regions, fo::NFeatures]
  void* stream;             // cudaStream_t for the CUDA backend, ignored on the CPU
};
std::string validate(const FirstOrderArgs& a);

}  // namespace rlnfast

// Ops with their own contract headers (same rules: one args struct, one validate, cpu and cuda signatures).
#include "common/dem_ops.h"
#include "common/fractal_ops.h"
#include "common/size_ops.h"

namespace rlnfast {

namespace cpu {
// Per-thread label tables of one pass. Labels below kDense live in dense vectors (grown on demand); larger
// ones in a sparse map, so a thread's memory follows the labels it sees, not the largest label value.
// region_stats_tables merges every thread into tables[0] (dense below kDense, sparse above) and empties the
// others, so memory is bounded by the labels present plus kDense entries per thread, never labels x threads;
// compact_table writes the present labels only (ascending; nullptr outputs: just count them).
struct RegionTable {
  static constexpr i64 kDense = 1 << 16;
  std::vector<i64> counts, bbox;
  std::unordered_map<i64, std::array<i64, 7>> sparse;   // label -> count, z0, y0, x0, z1, y1, x1
  i64 above_cap = 0;   // voxels with a label above the cap (not counted)
  void grow(i64 n, i64 nz, i64 ny, i64 nx) {
    i64 old = (i64)counts.size();
    if (n <= old) return;
    counts.resize(n, 0);
    bbox.resize(6 * n);
    for (i64 l = old; l < n; ++l) {
      i64* b = bbox.data() + 6 * l;
      b[0] = nz; b[1] = ny; b[2] = nx; b[3] = -1; b[4] = -1; b[5] = -1;
    }
  }
};
// Labels above cap are only counted in above_cap.
void region_stats_tables(const VolumeView& labels, i64 cap, std::vector<RegionTable>& tables);
i64 compact_table(const RegionTable& t, i64* labels, i64* counts, i64* bbox);
void gather(const GatherArgs& a);
void firstorder(const FirstOrderArgs& a);
int num_threads();
void set_num_threads(int n);
}  // namespace cpu

#ifdef RLNFAST_WITH_CUDA
namespace cuda {
// Pointers in the args are device pointers; the call is asynchronous on a.stream.
void firstorder(const FirstOrderArgs& a);
// Host pointers: copies in, runs firstorder on the current device, copies out (synchronous).
void firstorder_host(const FirstOrderArgs& a);
std::string device_summary();   // "" when no usable device
}  // namespace cuda
#endif

}  // namespace rlnfast

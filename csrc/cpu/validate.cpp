// validate() of every op: checked once, above the backends, so each backend can assume sane arguments.
#include "common/firstorder_math.h"
#include "common/ops.h"

namespace rlnfast {

std::string validate(const RegionStatsArgs& a) {
  if (a.max_label < 0) return "max_label must be >= 0";
  if (a.labels.nz < 0 || a.labels.ny < 0 || a.labels.nx < 0) return "label map shape must be non-negative";
  if (a.labels.dtype == DType::f32 || a.labels.dtype == DType::f64) return "label map must have an integer dtype";
  return "";
}

std::string validate(const GatherArgs& a) {
  if (a.image.nz != a.labels.nz || a.image.ny != a.labels.ny || a.image.nx != a.labels.nx)
    return "image and label map shapes differ";
  if (a.labels.dtype == DType::f32 || a.labels.dtype == DType::f64) return "label map must have an integer dtype";
  if (a.n_regions < 0) return "n_regions must be >= 0";
  if (a.image.nz < 0 || a.image.ny < 0 || a.image.nx < 0) return "shapes must be non-negative";
  // Host pointers (the gather runs on the CPU): every index the loops will use is checked here.
  if (a.max_label < -1) return "region_of must not be empty";
  if (a.offsets[0] != 0) return "offsets must start at 0";
  for (i64 r = 0; r < a.n_regions; ++r)
    if (a.offsets[r + 1] < a.offsets[r]) return "offsets must be non-decreasing";
  for (i64 l = 0; l <= a.max_label; ++l)
    if (a.region_of[l] < -1 || a.region_of[l] >= a.n_regions) return "region_of entries must be -1 or a region index";
  const i64 dims[3] = {a.labels.nz, a.labels.ny, a.labels.nx};
  for (i64 r = 0; r < a.n_regions; ++r) {
    if (a.labels_of_region[r] <= 0) return "region labels must be > 0 (labels <= 0 are background)";
    if (a.bbox == nullptr) continue;
    const i64* b = a.bbox + 6 * r;
    const bool empty = b[3] < b[0] || b[4] < b[1] || b[5] < b[2];
    if (empty) {
      if (a.offsets[r + 1] != a.offsets[r]) return "a region with voxels has an empty bounding box";
      continue;
    }
    for (int k = 0; k < 3; ++k)
      if (b[k] < 0 || b[k + 3] >= dims[k]) return "bounding boxes must lie inside the volume";
  }
  return "";
}

std::string validate(const FirstOrderArgs& a) {
  if (a.n_regions < 0) return "n_regions must be >= 0";
  if (a.bin_mode == fo::BinWidth) {
    if (!(a.bin_width > 0) || !std::isfinite(a.bin_width)) return "binWidth must be a finite number > 0";
  } else if (a.bin_mode == fo::BinCount) {
    if (a.bin_count < 1) return "binCount must be an integer >= 1";
  } else {
    return "bin_mode must be 0 (binWidth) or 1 (binCount)";
  }
  if (!std::isfinite(a.voxel_array_shift)) return "voxelArrayShift must be finite";
  return "";
}

}  // namespace rlnfast

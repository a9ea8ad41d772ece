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

// Contract of the elasticity (HU -> E) and DEM (scale-normalised Gaussian gradient magnitude of E) ops:
// args structs, validate(), and the cpu / cuda signatures (issue 3, features.md).
#pragma once
#include <cstdint>
#include <string>

#include "common/dem_math.h"

namespace rlnfast {

// ---- elasticity: E of every voxel ----------------------------------------------------------------
struct ElasticityArgs {
  VolumeView ct;                  // HU, any DType
  dem::ElasticityParams params;
  void* out;                      // [ct.size()] float64, or float32 when out_f32
  int32_t out_f32;
  i64* first_nan;                 // [1] flat index of the first NaN voxel (then out is not meaningful), or -1
  void* stream;                   // cudaStream_t for the CUDA backend, ignored on the CPU
};
std::string validate(const ElasticityArgs& a);

// ---- dem: DEM on output boxes of one CT ------------------------------------------------------------
// DEM = sigma sqrt(sum_a D_a^2), D_a = (G_sigma * E) differentiated along axis a, in 1/mm; every read
// of the CT is clamped to the volume ('nearest' at the volume border), so a box's values equal the
// whole-volume map on that box whatever the box. Whole-volume mode is one box covering the volume.
struct DemArgs {
  VolumeView ct;                  // the whole CT in HU (z, y, x), C-contiguous
  double spacing[3];              // z, y, x in mm
  double sigma;                   // mm
  dem::ElasticityParams params;
  const i64* boxes;               // [n_boxes, 6] host: z0, y0, x0, z1, y1, x1 inclusive, inside the volume
  i64 n_boxes;
  const i64* out_offsets;         // [n_boxes + 1] host: box b's map (C order) starts at out + out_offsets[b]
  void* out;                      // float64, or float32 when out_f32 (host for cpu, device for cuda::dem)
  int32_t out_f32;
  i64* first_nan;                 // [n_boxes] host: flat CT index of the first NaN read for box b, or -1
  void* stream;
};
std::string validate(const DemArgs& a);

// Filter radius (voxels) of axis a (0 = z): scipy's int(4 sigma / spacing[a] + 0.5).
inline int dem_radius(const DemArgs& a, int axis) { return dem::gaussian_radius(a.sigma / a.spacing[axis]); }

namespace cpu {
void elasticity(const ElasticityArgs& a);
void dem(const DemArgs& a);
}  // namespace cpu

#ifdef RLNFAST_WITH_CUDA
namespace cuda {
// ct and out are device pointers; boxes, out_offsets and first_nan are host pointers; synchronous.
void elasticity(const ElasticityArgs& a);
void dem(const DemArgs& a);
// Host pointers throughout: copies the CT in and the map out.
void elasticity_host(const ElasticityArgs& a);
void dem_host(const DemArgs& a);
}  // namespace cuda
#endif

}  // namespace rlnfast

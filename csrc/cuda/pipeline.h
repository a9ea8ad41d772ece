// The device-resident extraction pipeline (issue 12 item 2): one CT and one label map uploaded per case, the
// regions (per-label counts and bounding boxes), the gather of Original / E / DEM values, the fractal crops,
// first-order and fractal counts all on the device, and only the results copied back. Plain C++ (no CUDA
// types): the bindings include it; csrc/cuda/pipeline_cuda.cu implements it.
#pragma once
#include <memory>
#include <vector>

#include "common/ops.h"

namespace rlnfast {
namespace cuda {

enum PipelineKind : int { PlOriginal = 0, PlElasticity = 1, PlDem = 2 };

// One image type of a run: what it computes on every region.
struct PipelineImageType {
  int kind = PlOriginal;
  dem::ElasticityParams e{};     // Elasticity and DEM
  double sigma = 1.0;            // DEM, mm
  bool firstorder = false;
  int bin_mode = 0;
  double bin_width = 25.0;
  int bin_count = 0;
  int edges_f32 = 0;
  double shift = 0.0;
  bool dbc = false;              // fractal DBC counts on this image type's crops
  std::vector<i64> dbc_region, dbc_size;
  int grey_levels = 256;
};

struct PipelineRun {
  i64 n = 0;
  const i64* label = nullptr;    // [n] region label values (> 0)
  const i64* count = nullptr;    // [n] region voxels (> 0)
  const i64* bbox = nullptr;     // [n, 6] z0, y0, x0, z1, y1, x1 inclusive
  double spacing_mm[3] = {1, 1, 1};   // z, y, x (DEM)
  i64 spacing_units[3] = {1, 1, 1};   // z, y, x (fractal units)
  std::vector<PipelineImageType> types;
  std::vector<i64> box_region, box_size;   // region-only fractal pairs (empty: none)
};

struct PipelineResult {
  std::vector<std::vector<double>> firstorder;   // per type: [n, fo::NFeatures] (empty when not asked)
  std::vector<i64> dem_first_nan;                // [n] flat CT index of the first NaN a DEM box read, or -1
  std::vector<i64> n_mask, n_surface, sum_m2, n_grid;   // per region-only pair
  std::vector<std::vector<i64>> n_dbc;           // per type, per DBC pair
  std::vector<std::vector<double>> vmin, vmax;   // per type with DBC: [n]
};

class Pipeline {
 public:
  Pipeline();   // on the current device
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;
  // Uploads the CT and the label map (u8, u16 or i32) and fills stats [8 * (max_label + 1)]: voxel counts, finite
  // CT voxel counts, bounding-box minima (z, y, x per label) and maxima, per label value 0..max_label.
  void load(const VolumeView& ct, const VolumeView& labels, i64 max_label, i64* stats);
  // Everything else of the case loaded last, on the device; results copied back once.
  void run(const PipelineRun& r, PipelineResult& out);
  int device() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cuda
}  // namespace rlnfast

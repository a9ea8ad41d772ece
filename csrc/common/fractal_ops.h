// Contract of the fractal box-counting ops (issue 4): region crops, per-(region, box size) box counts and
// DBC counts. Regions travel as their bounding-box crops, so no op ever touches the whole volume per region.
#pragma once
#include <cstdint>
#include <string>

#include "hd.h"

namespace rlnfast {

struct VolumeView;

// Packs every region's bounding-box crop of (label map == label) into one ragged uint8 batch.
struct FractalCropArgs {
  const VolumeView* labels;   // the label map (integer dtype)
  const i64* label;           // [n_regions] label value of each region
  const i64* bbox;            // [n_regions, 6] z0, y0, x0, z1, y1, x1 inclusive (empty region: z0 > z1)
  i64 n_regions;
  const i64* offsets;         // [n_regions + 1]: cumulative bounding-box volumes (empty region: 0 voxels)
  uint8_t* mask;              // [offsets[n_regions]] output, C order (z, y, x) within each crop
  i64* count;                 // [n_regions] output: region voxels in each crop
};
std::string validate(const FractalCropArgs& a);

// The regions as crops: mask[offsets[r] .. offsets[r+1]) is region r's bounding box, dims[r] its shape.
struct FractalCrops {
  const uint8_t* mask;        // 1 = region voxel
  const i64* offsets;         // [n_regions + 1]
  const i64* dims;            // [n_regions, 3] nz, ny, nx (product = offsets[r+1] - offsets[r])
  i64 n_regions;
  i64 spacing[3];             // voxel spacing z, y, x in units (RLNFAST_FR_UNITS_PER_MM per mm)
};

// Box counts for every (region, box size) pair; pairs may come in any order.
struct FractalBoxArgs {
  FractalCrops crops;
  const i64* pair_region;     // [n_pairs] region index
  const i64* pair_size;       // [n_pairs] box size S in units (> 0)
  i64 n_pairs;
  i64* n_mask;                // [n_pairs] boxes intersecting the union of the region's voxel cuboids
  i64* n_surface;             // [n_pairs] the same for the boundary voxels (6-neighbour outside)
  i64* sum_m2;                // [n_pairs] sum over grid boxes of M^2, M = region voxel centres in the box
  i64* n_grid;                // [n_pairs] grid boxes covering the bounding box (empty boxes included)
  void* stream;               // cudaStream_t for the CUDA backend, ignored on the CPU
};
std::string validate(const FractalBoxArgs& a);

// Differential box counting of one intensity crop per region (same layout as the masks).
struct FractalDbcArgs {
  FractalCrops crops;
  const double* values;       // [offsets[n_regions]] intensities on the crops (only masked voxels are read)
  const i64* pair_region;
  const i64* pair_size;
  i64 n_pairs;
  int32_t grey_levels;        // G: grey levels g in [0, G-1], box height h = s * G / L
  i64* n_dbc;                 // [n_pairs] N(s) = sum over boxes holding centres of floor(gmax/h)-floor(gmin/h)+1
  double* vmin;               // [n_regions] region intensity range (NaN for an empty region)
  double* vmax;
  void* stream;
};
std::string validate(const FractalDbcArgs& a);

namespace cpu {
void fractal_crops(const FractalCropArgs& a);
void fractal_boxes(const FractalBoxArgs& a);
void fractal_dbc(const FractalDbcArgs& a);
}  // namespace cpu

#ifdef RLNFAST_WITH_CUDA
namespace cuda {
// Host pointers in and out: copies the crops in, runs the kernels on the current device, copies out.
void fractal_boxes_host(const FractalBoxArgs& a);
void fractal_dbc_host(const FractalDbcArgs& a);
}  // namespace cuda
#endif

}  // namespace rlnfast

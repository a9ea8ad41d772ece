// Contract of the node-size op (issue 16): per region, the Feret diameters of its axial slices. Regions
// travel as bounding-box crops (the layout of the fractal ops, FractalCrops), so the op never touches the
// whole volume per region. CPU only: the GPU backends run it on the host (regions are small, the work is
// a few rows per slice).
#pragma once
#include <cstdint>
#include <string>

#include "hd.h"

namespace rlnfast {

struct SizeArgs {
  const uint8_t* mask;        // ragged crops, C order (z, y, x) within each; 1 = region voxel
  const i64* offsets;         // [n_regions + 1]
  const i64* dims;            // [n_regions, 3] nz, ny, nx
  i64 n_regions;
  double spacing_y, spacing_x;   // pixel size of an axial slice in mm (axes 1 and 2 of the crops)
  double* short_axis;         // [n_regions] max over slices of the minimum Feret diameter (NaN: empty)
  double* long_axis;          // [n_regions] max over slices of the maximum Feret diameter (NaN: empty)
  i64* slices;                // [n_regions] slices holding the region
  i64* short_slice;           // [n_regions] crop z index of the slice giving short_axis (-1: empty)
  i64* long_slice;            // [n_regions] crop z index of the slice giving long_axis (-1: empty)
};
std::string validate(const SizeArgs& a);

namespace cpu {
void size_feret(const SizeArgs& a);
}  // namespace cpu

}  // namespace rlnfast

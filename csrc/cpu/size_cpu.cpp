// Node size on the CPU: OpenMP over regions; per axial slice, the row extremes, the hull of the corner
// levels and the rotating calipers of common/size_math.h.
#include <cmath>
#include <limits>
#include <vector>

#include "common/ops.h"
#include "common/size_math.h"

namespace rlnfast {

std::string validate(const SizeArgs& a) {
  if (a.n_regions < 0) return "n_regions must be >= 0";
  if (!(a.spacing_x > 0) || !(a.spacing_y > 0) || !std::isfinite(a.spacing_x) || !std::isfinite(a.spacing_y))
    return "pixel spacing must be finite and > 0 mm";
  if (a.offsets[0] != 0) return "offsets must start at 0";
  for (i64 r = 0; r < a.n_regions; ++r) {
    const i64* d = a.dims + 3 * r;
    if (d[0] < 0 || d[1] < 0 || d[2] < 0) return "crop dims must be >= 0";
    if (a.offsets[r + 1] - a.offsets[r] != d[0] * d[1] * d[2])
      return "crop of region " + std::to_string(r) + ": offsets do not match dims";
    // pixel coordinates enter products of two differences: keep them far from int64 overflow
    if (d[1] > (i64)1 << 28 || d[2] > (i64)1 << 28) return "crop of region " + std::to_string(r) + " is too large";
  }
  return "";
}

namespace cpu {

static const double SIZE_SLICE_RTOL = 1e-9;   // rlnfast.spec.size.SLICE_RTOL

void size_feret(const SizeArgs& a) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
#pragma omp parallel
  {
    std::vector<i64> xmin, xmax, px, py, hx, hy;
    std::vector<double> per_min, per_max;
#pragma omp for schedule(dynamic, 16)
    for (i64 r = 0; r < a.n_regions; ++r) {
      const i64 nz = a.dims[3 * r], ny = a.dims[3 * r + 1], nx = a.dims[3 * r + 2];
      const uint8_t* m = a.mask + a.offsets[r];
      double best_short = nan, best_long = nan;
      i64 n_slices = 0, s_short = -1, s_long = -1;
      xmin.resize(ny);
      xmax.resize(ny);
      px.resize(2 * (ny + 1));
      py.resize(2 * (ny + 1));
      hx.resize(4 * (ny + 1) + 1);
      hy.resize(4 * (ny + 1) + 1);
      per_min.assign(nz, nan);
      per_max.assign(nz, nan);
      for (i64 z = 0; z < nz; ++z) {
        bool any = false;
        for (i64 y = 0; y < ny; ++y) {
          const uint8_t* row = m + (z * ny + y) * nx;
          i64 lo = -1, hi = -1;
          for (i64 x = 0; x < nx; ++x)
            if (row[x]) { lo = x; break; }
          if (lo >= 0)
            for (i64 x = nx - 1; x >= lo; --x)
              if (row[x]) { hi = x; break; }
          xmin[y] = lo;
          xmax[y] = hi;
          any = any || lo >= 0;
        }
        if (!any) continue;
        ++n_slices;
        // corner levels Y = 0..ny: extremes over the pixel rows Y-1 and Y, sorted by (y, x)
        int n = 0;
        for (i64 Y = 0; Y <= ny; ++Y) {
          i64 lo = -1, hi = -1;
          for (i64 y = Y - 1; y <= Y; ++y) {
            if (y < 0 || y >= ny || xmin[y] < 0) continue;
            if (lo < 0 || xmin[y] < lo) lo = xmin[y];
            if (xmax[y] + 1 > hi) hi = xmax[y] + 1;
          }
          if (lo < 0) continue;
          px[n] = lo; py[n] = Y; ++n;
          px[n] = hi; py[n] = Y; ++n;
        }
        const int h = sz::hull_sorted(px.data(), py.data(), n, hx.data(), hy.data());
        double fmin, fmax;
        sz::feret(hx.data(), hy.data(), h, a.spacing_x, a.spacing_y, &fmin, &fmax);
        per_min[z] = fmin;
        per_max[z] = fmax;
        if (!(fmin <= best_short)) best_short = fmin;   // NaN start
        if (!(fmax <= best_long)) best_long = fmax;
      }
      // the first slice within SIZE_SLICE_RTOL of each maximum (equal diameters of several slices differ
      // in the last bits between implementations; this keeps the reported slice the same everywhere)
      for (i64 z = nz - 1; z >= 0; --z) {
        if (per_min[z] >= best_short * (1.0 - SIZE_SLICE_RTOL)) s_short = z;
        if (per_max[z] >= best_long * (1.0 - SIZE_SLICE_RTOL)) s_long = z;
      }
      a.short_axis[r] = best_short;
      a.long_axis[r] = best_long;
      a.slices[r] = n_slices;
      a.short_slice[r] = s_short;
      a.long_slice[r] = s_long;
    }
  }
}

}  // namespace cpu
}  // namespace rlnfast

// Region discovery and value gathering on the CPU: one pass over the label map for all labels at once.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/dispatch.h"
#include "common/ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace rlnfast {
namespace cpu {

int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void region_stats(const RegionStatsArgs& a) {
  const i64 L = a.max_label + 1;
  const i64 nz = a.labels.nz, ny = a.labels.ny, nx = a.labels.nx;
  for (i64 l = 0; l < L; ++l) {
    a.counts[l] = 0;
    i64* b = a.bbox + 6 * l;
    b[0] = nz; b[1] = ny; b[2] = nx; b[3] = -1; b[4] = -1; b[5] = -1;
  }
  dispatch_int_dtype(a.labels.dtype, a.labels.data, [&](auto* lab) {
    // Per-thread tables over z-slabs, merged after: labels are few compared with voxels.
    int nt = std::max(1, std::min<int>(num_threads(), (int)std::max<i64>(1, nz)));
    if (L * nt > (i64)1 << 26) nt = 1;   // huge label range: do not multiply the tables
    std::vector<i64> counts((size_t)(L * nt), 0), bbox((size_t)(L * nt * 6));
#pragma omp parallel num_threads(nt)
    {
      int t = 0;
#ifdef _OPENMP
      t = omp_get_thread_num();
#endif
      i64* c = counts.data() + t * L;
      i64* bb = bbox.data() + t * L * 6;
      for (i64 l = 0; l < L; ++l) {
        bb[6 * l + 0] = nz; bb[6 * l + 1] = ny; bb[6 * l + 2] = nx;
        bb[6 * l + 3] = -1; bb[6 * l + 4] = -1; bb[6 * l + 5] = -1;
      }
#pragma omp for schedule(static)
      for (i64 z = 0; z < nz; ++z) {
        for (i64 y = 0; y < ny; ++y) {
          const auto* row = lab + (z * ny + y) * nx;
          for (i64 x = 0; x < nx; ++x) {
            i64 l = (i64)row[x];
            if (l <= 0 || l > a.max_label) continue;
            c[l]++;
            i64* b = bb + 6 * l;
            if (z < b[0]) b[0] = z;
            if (y < b[1]) b[1] = y;
            if (x < b[2]) b[2] = x;
            if (z > b[3]) b[3] = z;
            if (y > b[4]) b[4] = y;
            if (x > b[5]) b[5] = x;
          }
        }
      }
    }
    for (int t = 0; t < nt; ++t) {
      for (i64 l = 0; l < L; ++l) {
        a.counts[l] += counts[t * L + l];
        const i64* s = bbox.data() + (t * L + l) * 6;
        i64* d = a.bbox + 6 * l;
        for (int k = 0; k < 3; ++k) d[k] = std::min(d[k], s[k]);
        for (int k = 3; k < 6; ++k) d[k] = std::max(d[k], s[k]);
      }
    }
  });
}

void gather(const GatherArgs& a) {
  const i64 n = a.labels.size();
  std::vector<i64> pos(a.offsets, a.offsets + a.n_regions);
  for (i64 r = 0; r < a.n_regions; ++r) a.first_nonfinite[r] = -1;
  dispatch_int_dtype(a.labels.dtype, a.labels.data, [&](auto* lab) {
    dispatch_dtype(a.image.dtype, a.image.data, [&](auto* img) {
      // Sequential: the order inside a region must be C order (image[mask]); the loop is memory bound.
      for (i64 i = 0; i < n; ++i) {
        i64 l = (i64)lab[i];
        if (l <= 0 || l > a.max_label) continue;
        int32_t r = a.region_of[l];
        if (r < 0) continue;
        double v = (double)img[i];
        if (!std::isfinite(v) && a.first_nonfinite[r] < 0) a.first_nonfinite[r] = i;
        a.values[pos[r]++] = v;
      }
    });
  });
}

}  // namespace cpu
}  // namespace rlnfast

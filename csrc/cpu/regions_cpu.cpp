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

void set_num_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n < 1 ? 1 : n);
#else
  (void)n;
#endif
}

static void fold_tables(std::vector<RegionTable>& tables, i64 nz, i64 ny, i64 nx);

void region_stats_tables(const VolumeView& labels, i64 cap, std::vector<RegionTable>& tables) {
  const i64 nz = labels.nz, ny = labels.ny, nx = labels.nx;
  int nt = std::max(1, std::min<int>(num_threads(), (int)std::max<i64>(1, nz)));
  tables.assign(nt, RegionTable());
  dispatch_int_dtype(labels.dtype, labels.data, [&](auto* lab) {
    // Per-thread tables over z-slabs, grown on demand (no separate pass for the maximum label), merged after.
#pragma omp parallel num_threads(nt)
    {
      int t = 0;
#ifdef _OPENMP
      t = omp_get_thread_num();
#endif
      RegionTable& T = tables[t];
#pragma omp for schedule(static)
      for (i64 z = 0; z < nz; ++z) {
        for (i64 y = 0; y < ny; ++y) {
          const auto* row = lab + (z * ny + y) * nx;
          for (i64 x = 0; x < nx; ++x) {
            // Background dominates a CT: skip 16 voxels at a time when all are zero (vectorises).
            if (x + 16 <= nx) {
              auto any = row[x];
              for (int k = 1; k < 16; ++k) any |= row[x + k];
              if (!any) { x += 15; continue; }
            }
            i64 l = (i64)row[x];
            if (l <= 0) continue;
            if (l > cap) { T.above_cap++; continue; }
            i64* b;
            if (l < RegionTable::kDense) {
              if (l >= (i64)T.counts.size()) T.grow(l + 1, nz, ny, nx);
              T.counts[l]++;
              b = T.bbox.data() + 6 * l;
            } else {
              auto it = T.sparse.find(l);
              if (it == T.sparse.end()) it = T.sparse.emplace(l, std::array<i64, 7>{0, nz, ny, nx, -1, -1, -1}).first;
              it->second[0]++;
              b = it->second.data() + 1;
            }
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
  });
  fold_tables(tables, nz, ny, nx);
}

// Fold every thread's table into tables[0]: dense entries (labels below kDense) into its dense vectors, the
// rest into its sparse map; the other tables are emptied. Memory: one dense table of at most kDense labels
// per thread during the pass, then one, plus one sparse entry per label present above kDense.
static void fold_tables(std::vector<RegionTable>& tables, i64 nz, i64 ny, i64 nx) {
  i64 top = 0;
  for (const auto& t : tables) top = std::max<i64>(top, (i64)t.counts.size() - 1);
  RegionTable& d = tables[0];
  if (top >= 1) d.grow(top + 1, nz, ny, nx);
  auto fold = [](i64* db, const i64* s) {
    for (int k = 0; k < 3; ++k) db[k] = std::min(db[k], s[k]);
    for (int k = 3; k < 6; ++k) db[k] = std::max(db[k], s[k]);
  };
  for (size_t i = 1; i < tables.size(); ++i) {
    RegionTable& t = tables[i];
    for (i64 l = 0; l < (i64)t.counts.size(); ++l)
      if (t.counts[l]) {
        d.counts[l] += t.counts[l];
        fold(d.bbox.data() + 6 * l, t.bbox.data() + 6 * l);
      }
    for (const auto& kv : t.sparse) {
      auto it = d.sparse.find(kv.first);
      if (it == d.sparse.end()) {
        d.sparse.emplace(kv.first, kv.second);
      } else {
        it->second[0] += kv.second[0];
        fold(it->second.data() + 1, kv.second.data() + 1);
      }
    }
    d.above_cap += t.above_cap;
    t.above_cap = 0;
    std::vector<i64>().swap(t.counts);
    std::vector<i64>().swap(t.bbox);
    std::unordered_map<i64, std::array<i64, 7>>().swap(t.sparse);
  }
}

i64 compact_table(const RegionTable& t, i64* labels, i64* counts, i64* bbox) {
  // Positive labels present, ascending: the dense part (all below kDense) first, then the sparse keys sorted.
  i64 n = 0;
  for (i64 l = 1; l < (i64)t.counts.size(); ++l) {
    if (!t.counts[l]) continue;
    if (labels) {
      labels[n] = l;
      counts[n] = t.counts[l];
      std::copy(t.bbox.data() + 6 * l, t.bbox.data() + 6 * l + 6, bbox + 6 * n);
    }
    ++n;
  }
  if (labels && !t.sparse.empty()) {
    std::vector<i64> keys;
    keys.reserve(t.sparse.size());
    for (const auto& kv : t.sparse) keys.push_back(kv.first);
    std::sort(keys.begin(), keys.end());
    for (i64 k : keys) {
      const auto& e = t.sparse.at(k);
      labels[n] = k;
      counts[n] = e[0];
      std::copy(e.data() + 1, e.data() + 7, bbox + 6 * n);
      ++n;
    }
    return n;
  }
  return n + (i64)t.sparse.size();
}

void gather(const GatherArgs& a) {
  // Each region scans only its bounding box, in C order, so values come out as image[mask] would give
  // them; regions run in parallel. Without boxes (bbox == nullptr) one sequential pass over the volume.
  // validate() checked the boxes lie in the volume and the offsets increase; the label map may still
  // differ from the one the counts came from (changed since), so no write passes a region's end, and a
  // region whose voxel count differs is marked kCountMismatch in first_nonfinite.
  const i64 ny = a.labels.ny, nx = a.labels.nx;
  for (i64 r = 0; r < a.n_regions; ++r) a.first_nonfinite[r] = -1;
  dispatch_int_dtype(a.labels.dtype, a.labels.data, [&](auto* lab) {
    dispatch_dtype(a.image.dtype, a.image.data, [&](auto* img) {
      if (a.bbox == nullptr) {
        std::vector<i64> pos(a.offsets, a.offsets + a.n_regions);
        const i64 n = a.labels.size();
        for (i64 i = 0; i < n; ++i) {
          i64 l = (i64)lab[i];
          if (l <= 0 || l > a.max_label) continue;
          int32_t r = a.region_of[l];
          if (r < 0 || r >= a.n_regions) continue;
          if (pos[r] >= a.offsets[r + 1]) { a.first_nonfinite[r] = kCountMismatch; continue; }
          double v = (double)img[i];
          if (!std::isfinite(v) && a.first_nonfinite[r] == -1) a.first_nonfinite[r] = i;
          a.values[pos[r]++] = v;
        }
        for (i64 r = 0; r < a.n_regions; ++r)
          if (pos[r] != a.offsets[r + 1]) a.first_nonfinite[r] = kCountMismatch;
        return;
      }
#pragma omp parallel for schedule(dynamic, 8)
      for (i64 r = 0; r < a.n_regions; ++r) {
        const i64* b = a.bbox + 6 * r;
        const i64 want = a.labels_of_region[r];
        i64 pos = a.offsets[r];
        const i64 end = a.offsets[r + 1];
        bool over = false;
        for (i64 z = b[0]; z <= b[3] && !over; ++z)
          for (i64 y = b[1]; y <= b[4] && !over; ++y) {
            const i64 base = (z * ny + y) * nx;
            for (i64 x = b[2]; x <= b[5]; ++x) {
              if ((i64)lab[base + x] != want) continue;
              if (pos >= end) { over = true; break; }
              double v = (double)img[base + x];
              if (!std::isfinite(v) && a.first_nonfinite[r] < 0) a.first_nonfinite[r] = base + x;
              a.values[pos++] = v;
            }
          }
        if (over || pos != end) a.first_nonfinite[r] = kCountMismatch;
      }
    });
  });
}

}  // namespace cpu
}  // namespace rlnfast

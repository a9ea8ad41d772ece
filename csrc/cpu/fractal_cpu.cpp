// Fractal box counting on the CPU: region crops packed in one pass, then OpenMP over (region, box size) pairs.
#include <algorithm>
#include <climits>
#include <cmath>
#include <vector>

#include "common/dispatch.h"
#include "common/fractal_math.h"
#include "common/ops.h"

namespace rlnfast {

static std::string validate_crops(const FractalCrops& c) {
  if (c.n_regions < 0) return "n_regions must be >= 0";
  for (int a = 0; a < 3; ++a)
    if (c.spacing[a] <= 0) return "voxel spacing must be > 0 (in units of 1e-6 mm)";
  for (i64 r = 0; r < c.n_regions; ++r) {
    const i64* d = c.dims + 3 * r;
    if (d[0] < 0 || d[1] < 0 || d[2] < 0) return "crop dims must be >= 0";
    if (c.offsets[r + 1] - c.offsets[r] != d[0] * d[1] * d[2])
      return "crop of region " + std::to_string(r) + ": offsets do not match dims";
    // every product in fractal_math.h must fit in 63 bits
    for (int a = 0; a < 3; ++a)
      if ((double)(2 * d[a] + 2) * (double)c.spacing[a] > 4e18) return "crop extent too large for int64 units";
  }
  return "";
}

static std::string validate_pairs(const FractalCrops& c, const i64* region, const i64* size, i64 n_pairs) {
  if (n_pairs < 0) return "n_pairs must be >= 0";
  for (i64 p = 0; p < n_pairs; ++p) {
    if (region[p] < 0 || region[p] >= c.n_regions) return "pair " + std::to_string(p) + ": region index out of range";
    if (size[p] <= 0) return "pair " + std::to_string(p) + ": box size must be > 0";
    const i64* d = c.dims + 3 * region[p];
    double boxes = 1.0;
    for (int a = 0; a < 3; ++a) boxes *= (double)fr::grid_boxes(d[a], c.spacing[a], size[p]);
    if (boxes > 2e9) return "pair " + std::to_string(p) + ": more than 2e9 boxes (box size far below the voxel size?)";
  }
  return "";
}

std::string validate(const FractalCropArgs& a) {
  if (a.n_regions < 0) return "n_regions must be >= 0";
  if (a.labels->dtype == DType::f32 || a.labels->dtype == DType::f64) return "label map must have an integer dtype";
  for (i64 r = 0; r < a.n_regions; ++r) {
    const i64* b = a.bbox + 6 * r;
    if (b[0] > b[3]) {
      if (a.offsets[r + 1] != a.offsets[r]) return "empty region must have an empty crop";
      continue;
    }
    if (b[0] < 0 || b[1] < 0 || b[2] < 0 || b[3] >= a.labels->nz || b[4] >= a.labels->ny || b[5] >= a.labels->nx ||
        b[1] > b[4] || b[2] > b[5])
      return "bounding box of region " + std::to_string(r) + " lies outside the label map";
    if (a.offsets[r + 1] - a.offsets[r] != (b[3] - b[0] + 1) * (b[4] - b[1] + 1) * (b[5] - b[2] + 1))
      return "offsets of region " + std::to_string(r) + " do not match its bounding box";
  }
  return "";
}

std::string validate(const FractalBoxArgs& a) {
  std::string e = validate_crops(a.crops);
  return e.empty() ? validate_pairs(a.crops, a.pair_region, a.pair_size, a.n_pairs) : e;
}

std::string validate(const FractalDbcArgs& a) {
  if (a.grey_levels < 2) return "fractalGreyLevels must be an integer >= 2";
  std::string e = validate_crops(a.crops);
  if (!e.empty()) return e;
  e = validate_pairs(a.crops, a.pair_region, a.pair_size, a.n_pairs);
  if (!e.empty()) return e;
  for (i64 p = 0; p < a.n_pairs; ++p) {   // levels are int on the GPU
    const i64* d = a.crops.dims + 3 * a.pair_region[p];
    const i64 L = fr::extent_max(d[0], d[1], d[2], a.crops.spacing[0], a.crops.spacing[1], a.crops.spacing[2]);
    if ((double)L / (double)a.pair_size[p] > 1e9) return "box size too small for the region extent (levels overflow)";
  }
  return "";
}

namespace cpu {

void fractal_crops(const FractalCropArgs& a) {
  dispatch_int_dtype(a.labels->dtype, a.labels->data, [&](auto* lab) {
    const i64 ny = a.labels->ny, nx = a.labels->nx;
#pragma omp parallel for schedule(dynamic, 8)
    for (i64 r = 0; r < a.n_regions; ++r) {
      const i64* b = a.bbox + 6 * r;
      a.count[r] = 0;
      if (b[0] > b[3]) continue;
      const i64 lv = a.label[r];
      uint8_t* out = a.mask + a.offsets[r];
      i64 n = 0;
      for (i64 z = b[0]; z <= b[3]; ++z)
        for (i64 y = b[1]; y <= b[4]; ++y) {
          const auto* row = lab + (z * ny + y) * nx;
          for (i64 x = b[2]; x <= b[5]; ++x) {
            const uint8_t in = (i64)row[x] == lv;
            *out++ = in;
            n += in;
          }
        }
      a.count[r] = n;
    }
  });
}

namespace {

// Per-axis voxel -> box tables of one (region, size) pair. Centre boxes are also ranked: only the distinct
// centre boxes can hold voxel centres, so M and the DBC extremes live on that compact grid (at most one
// cell per voxel, even when the boxes are much smaller than the voxels).
struct AxisTables {
  std::vector<i64> lo[3], hi[3], rank[3], rank_start[3];   // rank_start[a][k]: first voxel of rank k
  std::vector<i64> cval[3];                               // cval[a][k]: centre box index of rank k
  i64 g[3], distinct[3];
  void build(const i64* dims, const i64* D, i64 S) {
    for (int a = 0; a < 3; ++a) {
      const i64 n = dims[a];
      lo[a].resize(n);
      hi[a].resize(n);
      rank[a].resize(n);
      rank_start[a].clear();
      cval[a].clear();
      i64 prev = -1, k = -1;
      for (i64 i = 0; i < n; ++i) {
        lo[a][i] = fr::box_lo(i, D[a], S);
        hi[a][i] = fr::box_hi(i, D[a], S);
        const i64 c = fr::box_centre(i, D[a], S);
        if (c != prev) { ++k; prev = c; rank_start[a].push_back(i); cval[a].push_back(c); }
        rank[a][i] = k;
      }
      rank_start[a].push_back(n);
      g[a] = fr::grid_boxes(n, D[a], S);
      distinct[a] = k + 1;
    }
  }
};

// SWAR popcount: inline on any x86-64 (the builtin becomes a libgcc call without -mpopcnt).
inline i64 popcount64(uint64_t w) {
  w = w - ((w >> 1) & 0x5555555555555555ULL);
  w = (w & 0x3333333333333333ULL) + ((w >> 2) & 0x3333333333333333ULL);
  w = (w + (w >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
  return (i64)((w * 0x0101010101010101ULL) >> 56);
}

// Sets bits lo..hi (inclusive) of a bitset.
inline void set_bits(uint64_t* w, i64 lo, i64 hi) {
  const i64 a = lo >> 6, b = hi >> 6;
  const uint64_t lm = ~0ULL << (lo & 63), hm = ~0ULL >> (63 - (hi & 63));
  if (a == b) { w[a] |= lm & hm; return; }
  w[a] |= lm;
  for (i64 k = a + 1; k < b; ++k) w[k] = ~0ULL;
  w[b] |= hm;
}

// A run of consecutive flagged voxels along x in row zy = z * ny + y of a crop.
struct Run {
  i64 z, y, zy, first, last;
};

void find_runs(const uint8_t* m, i64 nz, i64 ny, i64 nx, std::vector<Run>& out) {
  out.clear();
  for (i64 z = 0; z < nz; ++z)
    for (i64 y = 0; y < ny; ++y) {
      const i64 zy = z * ny + y;
      const uint8_t* row = m + zy * nx;
      for (i64 x = 0; x < nx;) {
        if (!row[x]) { ++x; continue; }
        const i64 first = x;
        while (x < nx && row[x]) ++x;
        out.push_back({z, y, zy, first, x - 1});
      }
    }
}

// Boundary voxels of a crop (fr::is_boundary, written branch-free per row so that it vectorises): a region
// voxel on a face of the bounding box, or with one of its 6 neighbours outside the region.
void boundary_of(const uint8_t* m, i64 nz, i64 ny, i64 nx, uint8_t* b) {
  for (i64 z = 0; z < nz; ++z)
    for (i64 y = 0; y < ny; ++y) {
      const i64 row = (z * ny + y) * nx;
      const uint8_t* c = m + row;
      uint8_t* o = b + row;
      if (z == 0 || z == nz - 1 || y == 0 || y == ny - 1 || nx < 3) {
        for (i64 x = 0; x < nx; ++x) o[x] = c[x];
        continue;
      }
      const uint8_t *zm = c - ny * nx, *zp = c + ny * nx, *ym = c - nx, *yp = c + nx;
      o[0] = c[0];
      o[nx - 1] = c[nx - 1];
      for (i64 x = 1; x < nx - 1; ++x)
        o[x] = c[x] & (uint8_t)(1 - (c[x - 1] & c[x + 1] & zm[x] & zp[x] & ym[x] & yp[x]));
    }
}

// Nested sizes: with S' = 2 S the centre box of a voxel is floor(c / 2) of its box at S (the grid is
// anchored at 0), so the compact centre grid at S' is a coarsening of the one at S and per-box sums and
// extremes at S' follow from those at S without visiting the voxels again. map[k]: rank at S' of rank k at
// S; next: the centre boxes at S' (the distinct c / 2, still ascending).
void coarsen(const std::vector<i64>& cval, std::vector<i64>& map, std::vector<i64>& next) {
  map.resize(cval.size());
  next.clear();
  for (size_t j = 0; j < cval.size(); ++j) {
    const i64 v = cval[j] >> 1;
    if (next.empty() || next.back() != v) next.push_back(v);
    map[j] = (i64)next.size() - 1;
  }
}

// Compact centre grid of one size: the distinct centre boxes per axis.
struct CentreGrid {
  std::vector<i64> cval[3];
  i64 size() const { return (i64)(cval[0].size() * cval[1].size() * cval[2].size()); }
};

// The grid of size 2S from the grid of size S (maps: per axis, rank at S -> rank at 2S).
void coarsen_grid(const CentreGrid& from, CentreGrid& to, std::vector<i64>* maps) {
  for (int a = 0; a < 3; ++a) coarsen(from.cval[a], maps[a], to.cval[a]);
}

// Calls f(cell at S, its cell at 2S) for every cell of `from`.
template <class F>
void for_each_coarse(const CentreGrid& from, const CentreGrid& to, const std::vector<i64>* maps, F&& f) {
  const i64 Fy = (i64)from.cval[1].size(), Fx = (i64)from.cval[2].size();
  const i64 Ty = (i64)to.cval[1].size(), Tx = (i64)to.cval[2].size();
  for (i64 iz = 0; iz < (i64)from.cval[0].size(); ++iz)
    for (i64 iy = 0; iy < Fy; ++iy) {
      const i64 fb = (iz * Fy + iy) * Fx, tb = (maps[0][iz] * Ty + maps[1][iy]) * Tx;
      for (i64 ix = 0; ix < Fx; ++ix) f(fb + ix, tb + maps[2][ix]);
    }
}

struct Scratch {
  AxisTables t;
  std::vector<Run> mruns, bruns;
  std::vector<uint64_t> rows, plane, final_;
  std::vector<uint8_t> row_any;
  std::vector<int32_t> mc;
  std::vector<double> gmin, gmax, gv, gmin2, gmax2;
  std::vector<uint8_t> boundary;
  std::vector<int32_t> mc2;
  std::vector<i64> maps[3], order;
  CentreGrid grid, grid2;
};

// Scratch kept per thread across calls (fresh multi-megabyte buffers would cost page faults every call);
// fetched once per parallel region, as every thread_local access in a shared library is a function call.
Scratch& thread_scratch() {
  static thread_local Scratch s;
  return s;
}



// Boxes hit by the union of the cuboids of the voxels flagged in `m`, separably: a box (bz, by, bx) is hit
// iff some flagged voxel's box ranges contain bz, by and bx. Rows (x) become bitsets over bx (consecutive
// flagged voxels cover one contiguous box range), rows are OR-ed into (z, by) bitsets, those into (bz, by).
i64 count_hit(const std::vector<Run>& runs, const i64* d, Scratch& s) {
  const i64 nz = d[0], ny = d[1];
  const AxisTables& t = s.t;
  const i64 gz = t.g[0], gy = t.g[1], W = (t.g[2] + 63) / 64;
  s.rows.assign(nz * ny * W, 0);
  s.row_any.assign(nz * ny, 0);
  const i64 *xl = t.lo[2].data(), *xh = t.hi[2].data();
  for (const Run& u : runs) {
    set_bits(s.rows.data() + u.zy * W, xl[u.first], xh[u.last]);
    s.row_any[u.zy] = 1;
  }
  s.plane.assign(nz * gy * W, 0);
  for (i64 z = 0; z < nz; ++z)
    for (i64 y = 0; y < ny; ++y) {
      if (!s.row_any[z * ny + y]) continue;
      const uint64_t* R = s.rows.data() + (z * ny + y) * W;
      for (i64 by = t.lo[1][y]; by <= t.hi[1][y]; ++by) {
        uint64_t* P = s.plane.data() + (z * gy + by) * W;
        for (i64 w = 0; w < W; ++w) P[w] |= R[w];
      }
    }
  s.final_.assign(gz * gy * W, 0);
  for (i64 z = 0; z < nz; ++z)
    for (i64 bz = t.lo[0][z]; bz <= t.hi[0][z]; ++bz) {
      const uint64_t* P = s.plane.data() + z * gy * W;
      uint64_t* F = s.final_.data() + bz * gy * W;
      for (i64 w = 0; w < gy * W; ++w) F[w] |= P[w];
    }
  i64 n = 0;
  for (uint64_t w : s.final_) n += popcount64(w);
  return n;
}

void boxes_pair(const FractalBoxArgs& a, i64 p, bool nested, Scratch& s) {
  const FractalCrops& c = a.crops;
  const i64 r = a.pair_region[p], S = a.pair_size[p];
  const i64* d = c.dims + 3 * r;
  s.t.build(d, c.spacing, S);
  a.n_mask[p] = count_hit(s.mruns, d, s);
  a.n_surface[p] = count_hit(s.bruns, d, s);
  // M on the compact grid of centre boxes (empty grid boxes add 0 to sum M^2): summed from the previous
  // size when this one is its double, else a run adds to each centre-box rank it overlaps the number of
  // its voxels with that rank
  if (nested) {
    coarsen_grid(s.grid, s.grid2, s.maps);
    s.mc2.assign(s.grid2.size(), 0);
    for_each_coarse(s.grid, s.grid2, s.maps, [&](i64 f, i64 t) { s.mc2[t] += s.mc[f]; });
    std::swap(s.mc, s.mc2);
    std::swap(s.grid, s.grid2);
  } else {
    const i64 Dy = s.t.distinct[1], Dx = s.t.distinct[2];
    s.mc.assign(s.t.distinct[0] * Dy * Dx, 0);
    const i64 *rz = s.t.rank[0].data(), *ry = s.t.rank[1].data(), *rx = s.t.rank[2].data();
    const i64* xs = s.t.rank_start[2].data();
    for (const Run& u : s.mruns) {
      int32_t* M = s.mc.data() + (rz[u.z] * Dy + ry[u.y]) * Dx;
      for (i64 k = rx[u.first]; k <= rx[u.last]; ++k)
        M[k] += (int32_t)(std::min(u.last, xs[k + 1] - 1) - std::max(u.first, xs[k]) + 1);
    }
    for (int ax = 0; ax < 3; ++ax) s.grid.cval[ax] = s.t.cval[ax];
  }
  i64 m2 = 0;
  for (int32_t v : s.mc) m2 += (i64)v * (i64)v;
  a.sum_m2[p] = m2;
  a.n_grid[p] = s.t.g[0] * s.t.g[1] * s.t.g[2];
}

// The pairs of each region (CSR), and the regions that have pairs, larger crops first: dynamic scheduling
// then balances thousands of small regions and a few big ones, and each region's crop stays in cache
// while all its sizes are counted.
struct PairsByRegion {
  std::vector<i64> start, pairs, regions;
  PairsByRegion(const FractalCrops& c, const i64* region, i64 n_pairs) {
    start.assign(c.n_regions + 1, 0);
    for (i64 p = 0; p < n_pairs; ++p) start[region[p] + 1]++;
    for (i64 r = 0; r < c.n_regions; ++r) start[r + 1] += start[r];
    pairs.resize(n_pairs);
    std::vector<i64> fill(start.begin(), start.end() - 1);
    for (i64 p = 0; p < n_pairs; ++p) pairs[fill[region[p]]++] = p;
    for (i64 r = 0; r < c.n_regions; ++r)
      if (start[r + 1] > start[r]) regions.push_back(r);
    std::stable_sort(regions.begin(), regions.end(), [&](i64 x, i64 y) {
      return c.offsets[x + 1] - c.offsets[x] > c.offsets[y + 1] - c.offsets[y];
    });
  }
};

// The pairs of region r, ascending box size, in s.order.
void sorted_pairs(const PairsByRegion& pr, const i64* size, i64 r, std::vector<i64>& order) {
  order.assign(pr.pairs.begin() + pr.start[r], pr.pairs.begin() + pr.start[r + 1]);
  std::sort(order.begin(), order.end(), [&](i64 x, i64 y) { return size[x] < size[y]; });
}

}  // namespace

void fractal_boxes(const FractalBoxArgs& a) {
  const FractalCrops& c = a.crops;
  const PairsByRegion pr(c, a.pair_region, a.n_pairs);
  const i64 nreg = (i64)pr.regions.size();
#pragma omp parallel
  {
    Scratch& s = thread_scratch();
    std::vector<uint8_t>& boundary = s.boundary;
#pragma omp for schedule(dynamic, 1)
    for (i64 k = 0; k < nreg; ++k) {
      const i64 r = pr.regions[k];
      // boundary voxels once per region, not once per size
      const i64 nz = c.dims[3 * r], ny = c.dims[3 * r + 1], nx = c.dims[3 * r + 2];
      const uint8_t* m = c.mask + c.offsets[r];
      boundary.resize(nz * ny * nx);
      boundary_of(m, nz, ny, nx, boundary.data());
      find_runs(m, nz, ny, nx, s.mruns);
      find_runs(boundary.data(), nz, ny, nx, s.bruns);
      sorted_pairs(pr, a.pair_size, r, s.order);
      for (size_t j = 0; j < s.order.size(); ++j)
        boxes_pair(a, s.order[j], j > 0 && a.pair_size[s.order[j]] == 2 * a.pair_size[s.order[j - 1]], s);
    }
  }
}

void fractal_dbc(const FractalDbcArgs& a) {
  const FractalCrops& c = a.crops;
  const PairsByRegion pr(c, a.pair_region, a.n_pairs);
#pragma omp parallel
  {
    Scratch& s = thread_scratch();
    std::vector<double>& gv = s.gv;   // grey level of every crop voxel (region voxels only are read)
#pragma omp for schedule(dynamic, 4)
    for (i64 r = 0; r < c.n_regions; ++r) {
      const i64 nz = c.dims[3 * r], ny = c.dims[3 * r + 1], nx = c.dims[3 * r + 2], nv = nz * ny * nx;
      const uint8_t* m = c.mask + c.offsets[r];
      const double* v = a.values + c.offsets[r];
      double lo = HUGE_VAL, hi = -HUGE_VAL;   // branch-free: outside voxels read as +-inf
      for (i64 i = 0; i < nv; ++i) {
        lo = std::min(lo, m[i] ? v[i] : HUGE_VAL);
        hi = std::max(hi, m[i] ? v[i] : -HUGE_VAL);
      }
      if (lo > hi) lo = hi = RLNFAST_NAN;   // no region voxel
      a.vmin[r] = lo;
      a.vmax[r] = hi;
      if (pr.start[r + 1] == pr.start[r]) continue;
      // grey levels once per region: g = ((v - vmin) * (G-1)) / (vmax - vmin)
      gv.resize(nv);
      for (i64 i = 0; i < nv; ++i) gv[i] = m[i] ? fr::grey(v[i], lo, hi, a.grey_levels) : 0.0;
      const i64 L = fr::extent_max(nz, ny, nx, c.spacing[0], c.spacing[1], c.spacing[2]);
      sorted_pairs(pr, a.pair_size, r, s.order);
      for (size_t q = 0; q < s.order.size(); ++q) {
        const i64 p = s.order[q], S = a.pair_size[p];
        // Extremes of g per box: floor(g / h) is monotone in g, so the box's level span is
        // floor(gmax / h) - floor(gmin / h), the same as over the voxels' levels.
        if (q > 0 && S == 2 * a.pair_size[s.order[q - 1]]) {   // from the previous size's boxes
          coarsen_grid(s.grid, s.grid2, s.maps);
          s.gmin2.assign(s.grid2.size(), HUGE_VAL);
          s.gmax2.assign(s.grid2.size(), -1.0);
          for_each_coarse(s.grid, s.grid2, s.maps, [&](i64 f, i64 t) {
            s.gmin2[t] = std::min(s.gmin2[t], s.gmin[f]);
            s.gmax2[t] = std::max(s.gmax2[t], s.gmax[f]);
          });
          std::swap(s.gmin, s.gmin2);
          std::swap(s.gmax, s.gmax2);
          std::swap(s.grid, s.grid2);
        } else {
          s.t.build(c.dims + 3 * r, c.spacing, S);
          const i64 Dy = s.t.distinct[1], Dx = s.t.distinct[2];
          s.gmin.assign(s.t.distinct[0] * Dy * Dx, HUGE_VAL);
          s.gmax.assign(s.t.distinct[0] * Dy * Dx, -1.0);
          const i64 *rz = s.t.rank[0].data(), *ry = s.t.rank[1].data(), *rx = s.t.rank[2].data();
          for (i64 z = 0; z < nz; ++z)
            for (i64 y = 0; y < ny; ++y) {
              const i64 row = (z * ny + y) * nx, base = (rz[z] * Dy + ry[y]) * Dx;
              double* bl = s.gmin.data() + base;
              double* bh = s.gmax.data() + base;
              for (i64 x = 0; x < nx; ++x) {
                if (!m[row + x]) continue;
                const double g = gv[row + x];
                const i64 b = rx[x];
                bl[b] = std::min(bl[b], g);   // branchless minsd / maxsd
                bh[b] = std::max(bh[b], g);
              }
            }
          for (int ax = 0; ax < 3; ++ax) s.grid.cval[ax] = s.t.cval[ax];
        }
        const i64 nb = s.grid.size();
        const double h = fr::dbc_height(S, L, a.grey_levels);
        i64 n = 0;
        for (i64 b = 0; b < nb; ++b)
          if (s.gmax[b] >= 0.0) n += fr::dbc_level(s.gmax[b], h) - fr::dbc_level(s.gmin[b], h) + 1;
        a.n_dbc[p] = n;
      }
    }
  }
}

}  // namespace cpu
}  // namespace rlnfast

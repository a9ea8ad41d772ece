// Elasticity (HU -> E) and DEM on the CPU: separable Gaussian passes over boxes of the CT with OpenMP,
// the HU -> E transform fused into the first (x) pass, reads clamped to the volume ('nearest').
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <limits>
#include <vector>

#include "common/dispatch.h"
#include "common/ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace rlnfast {

// ---- validate --------------------------------------------------------------------------------------
static std::string check_params(const dem::ElasticityParams& p) {
  if (!std::isfinite(p.gamma) || !(p.gamma > 0)) return "gamma=" + std::to_string(p.gamma) + ": expected a finite number > 0";
  if (!std::isfinite(p.rho_w) || !(p.rho_w > 0))
    return "referenceDensity=" + std::to_string(p.rho_w) + ": expected a finite density > 0 (kg/m^3)";
  if (std::isnan(p.clip_lo) || std::isnan(p.clip_hi) || !(p.clip_lo <= p.clip_hi))
    return "clipRange=[" + std::to_string(p.clip_lo) + ", " + std::to_string(p.clip_hi) + "]: expected low <= high";
  return "";
}

std::string validate(const ElasticityArgs& a) {
  if (a.ct.nz < 0 || a.ct.ny < 0 || a.ct.nx < 0) return "CT shape must be non-negative";
  return check_params(a.params);
}

std::string validate(const DemArgs& a) {
  if (!std::isfinite(a.sigma) || !(a.sigma > 0)) return "sigma=" + std::to_string(a.sigma) + ": expected a finite number > 0 (mm)";
  for (int i = 0; i < 3; ++i)
    if (!std::isfinite(a.spacing[i]) || !(a.spacing[i] > 0)) return "spacing must be finite and > 0 (mm)";
  std::string m = check_params(a.params);
  if (!m.empty()) return m;
  if (a.ct.nz <= 0 || a.ct.ny <= 0 || a.ct.nx <= 0) return "CT must be a non-empty 3-D volume";
  for (int i = 0; i < 3; ++i)
    if (a.sigma / a.spacing[i] > 1e6) return "sigma / spacing exceeds 1e6 voxels";
  if (a.n_boxes < 0) return "n_boxes must be >= 0";
  const i64 dims[3] = {a.ct.nz, a.ct.ny, a.ct.nx};
  if (a.out_offsets[0] != 0) return "out_offsets must start at 0";
  for (i64 b = 0; b < a.n_boxes; ++b) {
    const i64* bx = a.boxes + 6 * b;
    i64 n = 1;
    for (int ax = 0; ax < 3; ++ax) {
      if (bx[ax] < 0 || bx[ax + 3] >= dims[ax] || bx[ax] > bx[ax + 3])
        return "box " + std::to_string(b) + " is empty or outside the volume";
      n *= bx[ax + 3] - bx[ax] + 1;
    }
    if (a.out_offsets[b + 1] - a.out_offsets[b] != n)
      return "out_offsets of box " + std::to_string(b) + " do not match its size";
  }
  return "";
}

namespace cpu {
namespace {

// ---- HU -> E of one voxel: a lookup table for integer CTs (exact: the table holds elasticity(v)) ----
struct EMap {
  dem::ElasticityParams p;
  std::vector<double> lut;   // elasticity(v) for v in [lut_lo, lut_lo + lut.size())
  i64 lut_lo = 0;

  template <class T>
  void prepare() {
    lut.clear();
    if (!std::numeric_limits<T>::is_integer) return;
    // Integers below ceil(lo) clip to lo and above floor(hi) to hi: one entry beyond each end covers them.
    // Both ends are clamped to the dtype's range: a dtype range wholly outside the clip range (uint8 with
    // clipRange [1000, 2000]) leaves one entry, the clipped value every voxel of that dtype maps to.
    const double tmin = (double)std::numeric_limits<T>::lowest(), tmax = (double)std::numeric_limits<T>::max();
    const double lo = std::min(std::max(std::ceil(p.clip_lo) - 1.0, tmin), tmax);
    const double hi = std::max(std::min(std::floor(p.clip_hi) + 1.0, tmax), lo);
    if (!(hi - lo < (double)(1 << 22))) return;   // a huge clip range: compute directly
    lut_lo = (i64)lo;
    const i64 n = (i64)hi - lut_lo + 1;
    lut.resize(n);
    for (i64 i = 0; i < n; ++i) lut[i] = dem::elasticity((double)(lut_lo + i), p);
  }

  template <class T>
  inline double operator()(T v) const {
    if (!lut.empty()) {
      i64 i = (i64)v - lut_lo;
      const i64 n = (i64)lut.size();
      i = i < 0 ? 0 : (i >= n ? n - 1 : i);
      return lut[i];
    }
    return dem::elasticity((double)v, p);
  }
};

template <class T>
inline bool is_nan(T v) {
  if constexpr (std::numeric_limits<T>::is_integer) return false;
  else return std::isnan(v);
}

// The line loops are the hot spot: clones for AVX2 (no FMA, so the arithmetic and therefore the map are
// the same on every x86-64 machine) and for baseline SSE2, picked once at load time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RLNFAST_HOT __attribute__((target_clones("avx2", "default")))
#else
#define RLNFAST_HOT
#endif

inline i64 clampi(i64 v, i64 lo, i64 hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Half kernels (w0 smoothing, w1 derivative) of the three axes.
struct Plan {
  int r[3];
  std::vector<double> w0[3], w1[3];
  std::vector<double> wz, wy, wx;   // z-pass weights with 1 / spacing folded in: w1_z / s_z, w0_z / s_y, w0_z / s_x
  double spacing[3];
  double sigma;
};

Plan make_plan(const DemArgs& a) {
  Plan pl;
  pl.sigma = a.sigma;
  for (int ax = 0; ax < 3; ++ax) {
    const double sv = a.sigma / a.spacing[ax];
    pl.r[ax] = dem::gaussian_radius(sv);
    std::vector<double> phi(2 * pl.r[ax] + 1);
    pl.w0[ax].resize(pl.r[ax] + 1);
    pl.w1[ax].resize(pl.r[ax] + 1);
    dem::gaussian_half_kernels(sv, pl.r[ax], phi.data(), pl.w0[ax].data(), pl.w1[ax].data());
    pl.spacing[ax] = a.spacing[ax];
  }
  for (int k = 0; k <= pl.r[0]; ++k) {
    pl.wz.push_back(pl.w1[0][k] / a.spacing[0]);
    pl.wy.push_back(pl.w0[0][k] / a.spacing[1]);
    pl.wx.push_back(pl.w0[0][k] / a.spacing[2]);
  }
  return pl;
}

// One output tile: [lo, hi] inclusive (volume coordinates), written at out + z*osz + y*osy + x.
struct Tile {
  i64 lo[3], hi[3];
  i64 box;          // which box (for the NaN report)
  void* out;
  i64 osz, osy;
};

struct Scratch {
  std::vector<double> line, a, b, ring;
};

// The three fused 1-D passes. Each output is accumulated in the order w[0] term, then k = 1, 2, ..., r,
// with paired samples (f(+k) + f(-k)) for smoothing and (f(+k) - f(-k)) for the derivative, so constants
// give exactly zero derivatives. Every output goes through the same vector code, W voxels at a time
// (the last chunk of a row computes padding lanes and keeps only the valid ones): a voxel's value does not
// depend on which tile or box computed it, so whole-volume and region mode agree to the bit on any
// machine. Input buffers carry W doubles of padding for the last chunk's reads.
#if defined(__GNUC__)
// The helpers are always inlined into the AVX2 / baseline clones, so no 32-byte vector crosses a call.
#pragma GCC diagnostic ignored "-Wpsabi"
typedef double vd __attribute__((vector_size(32)));
#define RLNFAST_VINLINE inline __attribute__((always_inline))
#else
#error "dem_cpu.cpp needs GCC/Clang vector extensions"
#endif
constexpr int V = 4, NV = 2, W = V * NV;

RLNFAST_VINLINE vd vload(const double* p) {
  vd v;
  std::memcpy(&v, p, sizeof(vd));
  return v;
}
RLNFAST_VINLINE void vstore(double* p, vd v) { std::memcpy(p, &v, sizeof(vd)); }
RLNFAST_VINLINE vd splat(double x) { return vd{x, x, x, x}; }

// Store W lanes (or the first n of them) to dst.
template <class O>
RLNFAST_VINLINE void store_chunk(O* dst, const vd* v, i64 n) {
  double t[W];
  for (int q = 0; q < NV; ++q) vstore(t + q * V, v[q]);
  if constexpr (std::is_same<O, double>::value) {
    if (n >= W) { std::memcpy(dst, t, sizeof(t)); return; }
  }
  for (i64 j = 0; j < std::min<i64>(n, W); ++j) dst[j] = (O)t[j];
}

// x pass on one line s[-r .. n + r + W): a = S s, b = G s.
RLNFAST_HOT void xpass_line(const double* s, double* a, double* b, i64 n, const double* w0, const double* w1, int r) {
  for (i64 i = 0; i < n; i += W) {
    vd sa[NV], sb[NV];
    const vd c0 = splat(w0[0]);
    for (int q = 0; q < NV; ++q) { sa[q] = c0 * vload(s + i + q * V); sb[q] = splat(0.0); }
    for (int k = 1; k <= r; ++k) {
      const vd u = splat(w0[k]), v = splat(w1[k]);
      for (int q = 0; q < NV; ++q) {
        const vd p = vload(s + i + q * V + k), m = vload(s + i + q * V - k);
        sa[q] += u * (p + m);
        sb[q] += v * (p - m);
      }
    }
    store_chunk(a + i, sa, n - i);
    store_chunk(b + i, sb, n - i);
  }
}

// y pass for one output row: ra[k], rb[k] are the rows of A and B at offset k - r (clamped).
// C = S A, Y = G A, X = S B.
RLNFAST_HOT void ypass_row(const double* const* ra, const double* const* rb, double* c, double* y, double* x, i64 n,
                           const double* w0, const double* w1, int r) {
  for (i64 i = 0; i < n; i += W) {
    vd sc[NV], sy[NV], sx[NV];
    const vd c0 = splat(w0[0]);
    for (int q = 0; q < NV; ++q) {
      sc[q] = c0 * vload(ra[r] + i + q * V);
      sy[q] = splat(0.0);
      sx[q] = c0 * vload(rb[r] + i + q * V);
    }
    for (int k = 1; k <= r; ++k) {
      const vd u = splat(w0[k]), v = splat(w1[k]);
      for (int q = 0; q < NV; ++q) {
        const vd ap = vload(ra[r + k] + i + q * V), am = vload(ra[r - k] + i + q * V);
        const vd bp = vload(rb[r + k] + i + q * V), bm = vload(rb[r - k] + i + q * V);
        sc[q] += u * (ap + am);
        sy[q] += v * (ap - am);
        sx[q] += u * (bp + bm);
      }
    }
    store_chunk(c + i, sc, n - i);
    store_chunk(y + i, sy, n - i);
    store_chunk(x + i, sx, n - i);
  }
}

// z pass and magnitude for one output row: rc/ry/rx[k] are the rows of C, Y, X at z offset k - r.
// DEM = sigma sqrt((G C / sz)^2 + (S Y / sy)^2 + (S X / sx)^2), summed in axis order as the reference.
// The 1 / spacing factors are folded into the weights (wz = w1_z / s_z, wy = w0_z / s_y, wx = w0_z / s_x):
// a few ulp from dividing at the end, and no divisions in the loop.
template <class O>
RLNFAST_HOT void zpass_row(const double* const* rc, const double* const* ry, const double* const* rx, O* out, i64 n,
                           const double* wz, const double* wy, const double* wx, int r, double sigma) {
  const vd vs = splat(sigma);
  for (i64 i = 0; i < n; i += W) {
    vd gz[NV], gy[NV], gx[NV];
    const vd cy = splat(wy[0]), cx = splat(wx[0]);
    for (int q = 0; q < NV; ++q) {
      gz[q] = splat(0.0);
      gy[q] = cy * vload(ry[r] + i + q * V);
      gx[q] = cx * vload(rx[r] + i + q * V);
    }
    for (int k = 1; k <= r; ++k) {
      const vd a = splat(wz[k]), b = splat(wy[k]), c = splat(wx[k]);
      for (int q = 0; q < NV; ++q) {
        gz[q] += a * (vload(rc[r + k] + i + q * V) - vload(rc[r - k] + i + q * V));
        gy[q] += b * (vload(ry[r + k] + i + q * V) + vload(ry[r - k] + i + q * V));
        gx[q] += c * (vload(rx[r + k] + i + q * V) + vload(rx[r - k] + i + q * V));
      }
    }
    vd m[NV];
    for (int q = 0; q < NV; ++q) {
      const vd a = gz[q], b = gy[q], c = gx[q];
      const vd ss = a * a + b * b + c * c;
      double t[V];
      vstore(t, ss);
      for (int j = 0; j < V; ++j) t[j] = std::sqrt(t[j]);   // vectorised by the compiler (sqrtpd)
      m[q] = vs * vload(t);
    }
    store_chunk(out + i, m, n - i);
  }
}

// DEM of one tile. Per input plane: x pass (E fused in) -> A = S_x E, B = G_x E on the rows the y pass
// needs; y pass -> C = S_y A, Y = G_y A, X = S_y B kept in a ring of 2 rz + 1 planes; per output
// plane the z pass gives D_z = G_z C, D_y = S_z Y, D_x = S_z X. Eight 1-D passes instead of nine.
template <class T, class O>
void dem_tile(const T* ct, const i64 dims[3], const EMap& em, const Plan& pl, const Tile& t, Scratch& s,
              i64& first_nan) {
  const i64 nz = dims[0], ny = dims[1], nx = dims[2];
  const int rz = pl.r[0], ry = pl.r[1], rx = pl.r[2];
  const i64 oz = t.hi[0] - t.lo[0] + 1, oy = t.hi[1] - t.lo[1] + 1, ox = t.hi[2] - t.lo[2] + 1;
  const i64 ylo = std::max<i64>(t.lo[1] - ry, 0), yhi = std::min<i64>(t.hi[1] + ry, ny - 1);
  const i64 nrows = yhi - ylo + 1;
  const i64 plane = oy * ox;
  const int R = 2 * rz + 1;
  // + W: the last vector chunk of a row reads up to W - 1 values past its end
  s.line.resize(ox + 2 * rx + W);
  s.a.resize(nrows * ox + W);
  s.b.resize(nrows * ox + W);
  s.ring.resize((size_t)3 * R * plane + W);
  const int rmax = 2 * std::max(ry, rz) + 1;
  std::vector<const double*> r1(rmax), r2(rmax), r3(rmax);
  // clamped x index of every line position, once per tile
  std::vector<i64> xs(ox + 2 * rx);
  for (i64 j = 0; j < ox + 2 * rx; ++j) xs[j] = clampi(t.lo[2] - rx + j, 0, nx - 1);
  const bool contiguous_x = t.lo[2] - rx >= 0 && t.hi[2] + rx <= nx - 1;

  auto compute_plane = [&](i64 zc) {
    const i64 slot = zc % R;
    double* C = s.ring.data() + (size_t)(3 * slot + 0) * plane;
    double* Y = s.ring.data() + (size_t)(3 * slot + 1) * plane;
    double* X = s.ring.data() + (size_t)(3 * slot + 2) * plane;
    // x pass with E fused
    for (i64 yr = 0; yr < nrows; ++yr) {
      const T* src = ct + (zc * ny + (ylo + yr)) * nx;
      double* line = s.line.data();
      const i64 nl = ox + 2 * rx;
      if (contiguous_x) {
        const T* p = src + (t.lo[2] - rx);
        for (i64 j = 0; j < nl; ++j) line[j] = em(p[j]);
        if constexpr (!std::numeric_limits<T>::is_integer) {
          for (i64 j = 0; j < nl; ++j)
            if (is_nan(p[j])) { first_nan = std::min(first_nan, (zc * ny + ylo + yr) * nx + t.lo[2] - rx + j); break; }
        }
      } else {
        for (i64 j = 0; j < nl; ++j) line[j] = em(src[xs[j]]);
        if constexpr (!std::numeric_limits<T>::is_integer) {
          for (i64 j = 0; j < nl; ++j)
            if (is_nan(src[xs[j]])) { first_nan = std::min(first_nan, (zc * ny + ylo + yr) * nx + xs[j]); break; }
        }
      }
      xpass_line(line + rx, s.a.data() + yr * ox, s.b.data() + yr * ox, ox, pl.w0[2].data(), pl.w1[2].data(), rx);
    }
    // y pass
    for (i64 yo = 0; yo < oy; ++yo) {
      const i64 y = t.lo[1] + yo;
      for (int k = -ry; k <= ry; ++k) {
        const i64 row = (clampi(y + k, 0, ny - 1) - ylo) * ox;
        r1[ry + k] = s.a.data() + row;
        r2[ry + k] = s.b.data() + row;
      }
      ypass_row(r1.data(), r2.data(), C + yo * ox, Y + yo * ox, X + yo * ox, ox, pl.w0[1].data(), pl.w1[1].data(), ry);
    }
  };

  i64 next = std::max<i64>(t.lo[0] - rz, 0);
  for (i64 zo = 0; zo < oz; ++zo) {
    const i64 z = t.lo[0] + zo;
    const i64 need = std::min<i64>(z + rz, nz - 1);
    for (; next <= need; ++next) compute_plane(next);
    O* out = static_cast<O*>(t.out) + zo * t.osz;
    for (i64 yo = 0; yo < oy; ++yo) {
      for (int k = -rz; k <= rz; ++k) {
        const double* base = s.ring.data() + (size_t)(3 * (clampi(z + k, 0, nz - 1) % R)) * plane + yo * ox;
        r1[rz + k] = base;
        r2[rz + k] = base + plane;
        r3[rz + k] = base + 2 * plane;
      }
      zpass_row(r1.data(), r2.data(), r3.data(), out + yo * t.osy, ox, pl.wz.data(), pl.wy.data(), pl.wx.data(), rz,
                pl.sigma);
    }
  }
}

// Tile sizes for large boxes (whole-volume mode): a tile's ring of 3 (2 rz + 1) planes stays in cache.
void tile_shape(i64 t[3]) {
  t[0] = 32; t[1] = 48; t[2] = 128;
  if (const char* e = std::getenv("RLNFAST_DEM_TILE")) {   // "z,y,x": tuning only
    long long a, b, c;
    if (std::sscanf(e, "%lld,%lld,%lld", &a, &b, &c) == 3 && a > 0 && b > 0 && c > 0) { t[0] = a; t[1] = b; t[2] = c; }
  }
}

template <class T>
void dem_typed(const T* ct, const DemArgs& a) {
  const i64 dims[3] = {a.ct.nz, a.ct.ny, a.ct.nx};
  EMap em;
  em.p = a.params;
  em.prepare<T>();
  const Plan pl = make_plan(a);
  i64 ts[3];
  tile_shape(ts);
  const size_t esz = a.out_f32 ? sizeof(float) : sizeof(double);
  std::vector<Tile> tiles;
  for (i64 b = 0; b < a.n_boxes; ++b) {
    const i64* bx = a.boxes + 6 * b;
    const i64 bz = bx[3] - bx[0] + 1, by = bx[4] - bx[1] + 1, bxn = bx[5] - bx[2] + 1;
    char* base = static_cast<char*>(a.out) + esz * a.out_offsets[b];
    for (i64 z0 = bx[0]; z0 <= bx[3]; z0 += ts[0])
      for (i64 y0 = bx[1]; y0 <= bx[4]; y0 += ts[1])
        for (i64 x0 = bx[2]; x0 <= bx[5]; x0 += ts[2]) {
          Tile t;
          t.lo[0] = z0; t.lo[1] = y0; t.lo[2] = x0;
          t.hi[0] = std::min(z0 + ts[0] - 1, bx[3]);
          t.hi[1] = std::min(y0 + ts[1] - 1, bx[4]);
          t.hi[2] = std::min(x0 + ts[2] - 1, bx[5]);
          t.box = b;
          t.osz = by * bxn;
          t.osy = bxn;
          t.out = base + esz * ((z0 - bx[0]) * t.osz + (y0 - bx[1]) * t.osy + (x0 - bx[2]));
          tiles.push_back(t);
        }
    (void)bz;
    a.first_nan[b] = -1;
  }
  const i64 nt = (i64)tiles.size();
  const i64 none = std::numeric_limits<i64>::max();
  std::vector<i64> tile_nan(nt, none);
#pragma omp parallel
  {
    Scratch s;
#pragma omp for schedule(dynamic, 1)
    for (i64 i = 0; i < nt; ++i) {
      if (a.out_f32) dem_tile<T, float>(ct, dims, em, pl, tiles[i], s, tile_nan[i]);
      else dem_tile<T, double>(ct, dims, em, pl, tiles[i], s, tile_nan[i]);
    }
  }
  for (i64 i = 0; i < nt; ++i) {
    if (tile_nan[i] == none) continue;
    i64& f = a.first_nan[tiles[i].box];
    if (f < 0 || tile_nan[i] < f) f = tile_nan[i];
  }
}

template <class T, class O>
void elasticity_typed(const T* ct, i64 n, const EMap& em, O* out, i64* first_nan) {
  i64 bad = std::numeric_limits<i64>::max();
  // A region's crop is a few thousand voxels: a thread team costs more than it saves there (and idle OpenMP
  // threads spin, taking CPU from the other workers of a cohort run).
#pragma omp parallel for schedule(static) reduction(min : bad) if (n >= (i64(1) << 16))
  for (i64 i = 0; i < n; ++i) {
    out[i] = (O)em(ct[i]);
    if (is_nan(ct[i]) && i < bad) bad = i;
  }
  *first_nan = bad == std::numeric_limits<i64>::max() ? -1 : bad;
}

}  // namespace

void elasticity(const ElasticityArgs& a) {
  dispatch_dtype(a.ct.dtype, a.ct.data, [&](auto p) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(p)>>;
    EMap em;
    em.p = a.params;
    // The table costs one power per integer of the clip range (about 4,000): worth it for a volume, not for a
    // small crop. Both give elasticity(v) of the same double, so the values are identical either way.
    if (a.ct.size() >= 4 * (a.params.clip_hi - a.params.clip_lo + 3)) em.prepare<T>();
    if (a.out_f32) elasticity_typed(p, a.ct.size(), em, static_cast<float*>(a.out), a.first_nan);
    else elasticity_typed(p, a.ct.size(), em, static_cast<double*>(a.out), a.first_nan);
  });
}

void dem(const DemArgs& a) {
  dispatch_dtype(a.ct.dtype, a.ct.data, [&](auto p) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(p)>>;
    dem_typed<T>(p, a);
  });
}

}  // namespace cpu
}  // namespace rlnfast

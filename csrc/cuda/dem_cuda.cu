// Elasticity and DEM on the GPU: host-side planning (expanded boxes, weights) and launches of the
// kernels of common/dem_kernel.cuh, the same source CuPy compiles (rlnfast/_cupy/dem.py plans alike).
#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "common/dem_kernel.cuh"
#include "common/ops.h"
#include "cuda/launch.h"
#include "cuda/runtime.cuh"

namespace rlnfast {
namespace cuda {
namespace {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::u8: case DType::i8: return 1;
    case DType::u16: case DType::i16: return 2;
    case DType::u32: case DType::i32: case DType::f32: return 4;
    default: return 8;
  }
}

unsigned grid_for(long long n, int block) {
  long long g = (n + block - 1) / block;
  return (unsigned)std::max<long long>(1, std::min<long long>(g, 1 << 20));
}

// The weights of the three axes packed as [w0z, w1z, w0y, w1y, w0x, w1x] (radius + 1 values each).
template <class F>
std::vector<F> packed_weights(const DemArgs& a, int r[3], size_t off[6]) {
  std::vector<F> w;
  for (int ax = 0; ax < 3; ++ax) {
    const double sv = a.sigma / a.spacing[ax];
    r[ax] = dem::gaussian_radius(sv);
    std::vector<double> phi(2 * r[ax] + 1), w0(r[ax] + 1), w1(r[ax] + 1);
    dem::gaussian_half_kernels(sv, r[ax], phi.data(), w0.data(), w1.data());
    off[2 * ax] = w.size();
    for (double v : w0) w.push_back((F)v);
    off[2 * ax + 1] = w.size();
    for (double v : w1) w.push_back((F)v);
  }
  return w;
}

// The three passes with storage and accumulation in F: float for a float32 map, double for a float64 map
// (what feeds features, so that the cuda and cpu backends agree to 1e-9).
template <class F>
struct Passes;
template <>
struct Passes<float> {
#define RL_XF(S, T) static constexpr auto x_##S = rlnfast_dem_xpass_##S;
  RLNFAST_DEM_FOR_EACH_DTYPE(RL_XF)
#undef RL_XF
  static constexpr auto y = rlnfast_dem_ypass;
};
template <>
struct Passes<double> {
#define RL_XD(S, T) static constexpr auto x_##S = rlnfast_dem_xpass_##S##_d;
  RLNFAST_DEM_FOR_EACH_DTYPE(RL_XD)
#undef RL_XD
  static constexpr auto y = rlnfast_dem_ypass_d;
};

}  // namespace

void elasticity(const ElasticityArgs& a) {
  const i64 n = a.ct.size();
  *a.first_nan = -1;
  if (n == 0) return;
  const DeviceGuard guard(a.ct.data);
  cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
  DevBuf<unsigned long long> nan_d(1, stream);
  nan_d.fill_bytes(0xff, 1);
  const dem::ElasticityParams& p = a.params;
  const unsigned grid = grid_for(n, RLNFAST_DEM_BLOCK);
#define RL_E(S, T)                                                                                              \
  case DType::S:                                                                                                \
    if (a.out_f32)                                                                                              \
      RLNFAST_LAUNCH(rlnfast_elasticity_##S##_f32, grid, RLNFAST_DEM_BLOCK, 0, stream)(                                  \
          static_cast<const T*>(a.ct.data), n, p.clip_lo, p.clip_hi, p.rho_w, p.gamma, static_cast<float*>(a.out), \
          nan_d.p);                                                                                             \
    else                                                                                                        \
      RLNFAST_LAUNCH(rlnfast_elasticity_##S##_f64, grid, RLNFAST_DEM_BLOCK, 0, stream)(                                  \
          static_cast<const T*>(a.ct.data), n, p.clip_lo, p.clip_hi, p.rho_w, p.gamma,                          \
          static_cast<double*>(a.out), nan_d.p);                                                                \
    break;
  switch (a.ct.dtype) { RLNFAST_DEM_FOR_EACH_DTYPE(RL_E) }
#undef RL_E
  RLNFAST_CUDA_CHECK_LAUNCH();
  unsigned long long bad = 0;
  nan_d.download(&bad, 1);
  sync(stream);
  *a.first_nan = bad == std::numeric_limits<unsigned long long>::max() ? -1 : (i64)bad;
}

template <class F>
static void dem_passes(const DemArgs& a) {
  cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
  const i64 dims[3] = {a.ct.nz, a.ct.ny, a.ct.nx};
  int r[3];
  size_t woff[6];
  const std::vector<F> w = packed_weights<F>(a, r, woff);
  // Expanded boxes (output box + radius, clipped to the volume), packed one after the other.
  std::vector<long long> desc((size_t)a.n_boxes * RLNFAST_DEM_NCOL, 0);
  long long voff = 0, roff = 0;
  for (i64 b = 0; b < a.n_boxes; ++b) {
    const i64* bx = a.boxes + 6 * b;
    long long* d = desc.data() + b * RLNFAST_DEM_NCOL;
    for (int ax = 0; ax < 3; ++ax) {
      const i64 lo = std::max<i64>(bx[ax] - r[ax], 0), hi = std::min<i64>(bx[ax + 3] + r[ax], dims[ax] - 1);
      d[RLNFAST_DEM_BZ0 + ax] = lo;
      d[RLNFAST_DEM_BNZ + ax] = hi - lo + 1;
      d[RLNFAST_DEM_IZ + ax] = bx[ax] - lo;
      d[RLNFAST_DEM_INZ + ax] = bx[ax + 3] - bx[ax] + 1;
    }
    d[RLNFAST_DEM_VOFF] = voff;
    d[RLNFAST_DEM_ROFF] = roff;
    d[RLNFAST_DEM_OOFF] = a.out_offsets[b];
    voff += d[RLNFAST_DEM_BNZ] * d[RLNFAST_DEM_BNY] * d[RLNFAST_DEM_BNX];
    roff += d[RLNFAST_DEM_BNZ] * d[RLNFAST_DEM_BNY];
  }
  const long long n_out = a.out_offsets[a.n_boxes];
  DevBuf<long long> desc_d(desc.size(), stream);
  DevBuf<F> w_d(w.size(), stream);
  DevBuf<unsigned long long> nan_d(a.n_boxes, stream);
  desc_d.upload(desc.data(), desc.size());
  w_d.upload(w.data(), w.size());
  nan_d.fill_bytes(0xff, a.n_boxes);
  DevBuf<F> A(voff, stream), B(voff, stream), C(voff, stream), Y(voff, stream), X(voff, stream);
  const dem::ElasticityParams& p = a.params;
  const unsigned xgrid = (unsigned)std::max<long long>(1, std::min<long long>(roff, 1 << 20));
  const size_t shmem = sizeof(F) * (RLNFAST_DEM_XBLOCK + 2 * r[2]);
  if (shmem > 48 * 1024) throw std::invalid_argument("dem: sigma / spacing along x is too large for the CUDA kernel");
#define RL_X(S, T)                                                                                                  \
  case DType::S:                                                                                                    \
    RLNFAST_LAUNCH(Passes<F>::x_##S, xgrid, RLNFAST_DEM_XBLOCK, shmem, stream)(                                  \
        static_cast<const T*>(a.ct.data), a.ct.ny, a.ct.nx, desc_d.p, a.n_boxes, roff, w_d.p + woff[4],             \
        w_d.p + woff[5], r[2], p.clip_lo, p.clip_hi, p.rho_w, p.gamma, A.p, B.p, nan_d.p);                          \
    break;
  switch (a.ct.dtype) { RLNFAST_DEM_FOR_EACH_DTYPE(RL_X) }
#undef RL_X
  RLNFAST_CUDA_CHECK_LAUNCH();
  RLNFAST_LAUNCH(Passes<F>::y, grid_for(voff, RLNFAST_DEM_BLOCK), RLNFAST_DEM_BLOCK, 0, stream)(
      desc_d.p, a.n_boxes, voff, w_d.p + woff[2], w_d.p + woff[3], r[1], A.p, B.p, C.p, Y.p, X.p);
  RLNFAST_CUDA_CHECK_LAUNCH();
  if constexpr (std::is_same<F, double>::value)
    RLNFAST_LAUNCH(rlnfast_dem_zpass_d, grid_for(n_out, RLNFAST_DEM_BLOCK), RLNFAST_DEM_BLOCK, 0, stream)(
        desc_d.p, a.n_boxes, n_out, w_d.p + woff[0], w_d.p + woff[1], r[0], C.p, Y.p, X.p, a.spacing[0],
        a.spacing[1], a.spacing[2], a.sigma, static_cast<double*>(a.out));
  else if (a.out_f32)
    RLNFAST_LAUNCH(rlnfast_dem_zpass_f32, grid_for(n_out, RLNFAST_DEM_BLOCK), RLNFAST_DEM_BLOCK, 0, stream)(
        desc_d.p, a.n_boxes, n_out, w_d.p + woff[0], w_d.p + woff[1], r[0], C.p, Y.p, X.p, a.spacing[0],
        a.spacing[1], a.spacing[2], a.sigma, static_cast<float*>(a.out));
  else
    RLNFAST_LAUNCH(rlnfast_dem_zpass_f64, grid_for(n_out, RLNFAST_DEM_BLOCK), RLNFAST_DEM_BLOCK, 0, stream)(
        desc_d.p, a.n_boxes, n_out, w_d.p + woff[0], w_d.p + woff[1], r[0], C.p, Y.p, X.p, a.spacing[0],
        a.spacing[1], a.spacing[2], a.sigma, static_cast<double*>(a.out));
  RLNFAST_CUDA_CHECK_LAUNCH();
  std::vector<unsigned long long> bad(a.n_boxes);
  nan_d.download(bad.data(), a.n_boxes);
  sync(stream);
  for (i64 b = 0; b < a.n_boxes; ++b)
    a.first_nan[b] = bad[b] == std::numeric_limits<unsigned long long>::max() ? -1 : (i64)bad[b];
}

DemPlan dem_plan(const DemArgs& a) {
  DemPlan pl;
  pl.w = packed_weights<double>(a, pl.r, pl.woff);
  const i64 dims[3] = {a.ct.nz, a.ct.ny, a.ct.nx};
  pl.desc.assign((size_t)a.n_boxes * RLNFAST_DEM_NCOL, 0);
  for (i64 b = 0; b < a.n_boxes; ++b) {
    const i64* bx = a.boxes + 6 * b;
    long long* d = pl.desc.data() + b * RLNFAST_DEM_NCOL;
    for (int ax = 0; ax < 3; ++ax) {
      const i64 lo = std::max<i64>(bx[ax] - pl.r[ax], 0), hi = std::min<i64>(bx[ax + 3] + pl.r[ax], dims[ax] - 1);
      d[RLNFAST_DEM_BZ0 + ax] = lo;
      d[RLNFAST_DEM_BNZ + ax] = hi - lo + 1;
      d[RLNFAST_DEM_IZ + ax] = bx[ax] - lo;
      d[RLNFAST_DEM_INZ + ax] = bx[ax + 3] - bx[ax] + 1;
    }
    d[RLNFAST_DEM_VOFF] = pl.n_vox;
    d[RLNFAST_DEM_ROFF] = pl.n_rows;
    d[RLNFAST_DEM_OOFF] = a.out_offsets[b];
    pl.n_vox += d[RLNFAST_DEM_BNZ] * d[RLNFAST_DEM_BNY] * d[RLNFAST_DEM_BNX];
    pl.n_rows += d[RLNFAST_DEM_BNZ] * d[RLNFAST_DEM_BNY];
  }
  pl.n_out = a.out_offsets[a.n_boxes];
  const size_t shmem = sizeof(double) * (RLNFAST_DEM_XBLOCK + 2 * pl.r[2]);
  if (shmem > 48 * 1024) throw std::invalid_argument("dem: sigma / spacing along x is too large for the CUDA kernel");
  return pl;
}

void dem_passes_f64(const DemArgs& a, const DemPlan& pl, const long long* desc, const double* w, double* A, double* B,
                    double* C, double* Y, double* X, unsigned long long* first_nan, double* out) {
  if (a.n_boxes == 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
  const dem::ElasticityParams& p = a.params;
  const unsigned xgrid = (unsigned)std::max<long long>(1, std::min<long long>(pl.n_rows, 1 << 20));
  const size_t shmem = sizeof(double) * (RLNFAST_DEM_XBLOCK + 2 * pl.r[2]);
#define RL_X(S, T)                                                                                                  \
  case DType::S:                                                                                                    \
    RLNFAST_LAUNCH(Passes<double>::x_##S, xgrid, RLNFAST_DEM_XBLOCK, shmem, stream)(                                \
        static_cast<const T*>(a.ct.data), a.ct.ny, a.ct.nx, desc, a.n_boxes, pl.n_rows, w + pl.woff[4],             \
        w + pl.woff[5], pl.r[2], p.clip_lo, p.clip_hi, p.rho_w, p.gamma, A, B, first_nan);                          \
    break;
  switch (a.ct.dtype) { RLNFAST_DEM_FOR_EACH_DTYPE(RL_X) }
#undef RL_X
  RLNFAST_CUDA_CHECK_LAUNCH();
  RLNFAST_LAUNCH(Passes<double>::y, grid_for(pl.n_vox, RLNFAST_DEM_BLOCK), RLNFAST_DEM_BLOCK, 0, stream)(
      desc, a.n_boxes, pl.n_vox, w + pl.woff[2], w + pl.woff[3], pl.r[1], A, B, C, Y, X);
  RLNFAST_CUDA_CHECK_LAUNCH();
  RLNFAST_LAUNCH(rlnfast_dem_zpass_d, grid_for(pl.n_out, RLNFAST_DEM_BLOCK), RLNFAST_DEM_BLOCK, 0, stream)(
      desc, a.n_boxes, pl.n_out, w + pl.woff[0], w + pl.woff[1], pl.r[0], C, Y, X, a.spacing[0], a.spacing[1],
      a.spacing[2], a.sigma, out);
  RLNFAST_CUDA_CHECK_LAUNCH();
}

void dem(const DemArgs& a) {
  for (i64 b = 0; b < a.n_boxes; ++b) a.first_nan[b] = -1;
  if (a.n_boxes == 0) return;
  const DeviceGuard guard(a.ct.data);
  if (a.out_f32) dem_passes<float>(a);
  else dem_passes<double>(a);
}

void elasticity_host(const ElasticityArgs& h) {
  cudaStream_t stream = static_cast<cudaStream_t>(h.stream);
  const i64 n = h.ct.size();
  const size_t isz = dtype_size(h.ct.dtype), osz = h.out_f32 ? sizeof(float) : sizeof(double);
  DevBuf<char> ct(n * isz, stream), out(n * osz, stream);
  ct.upload(static_cast<const char*>(h.ct.data), n * isz);
  ElasticityArgs d = h;
  d.ct.data = ct.p;
  d.out = out.p;
  elasticity(d);
  out.download(static_cast<char*>(h.out), n * osz);
  sync(stream);
}

void dem_host(const DemArgs& h) {
  cudaStream_t stream = static_cast<cudaStream_t>(h.stream);
  const i64 n = h.ct.size();
  const i64 n_out = h.out_offsets[h.n_boxes];
  const size_t isz = dtype_size(h.ct.dtype), osz = h.out_f32 ? sizeof(float) : sizeof(double);
  DevBuf<char> ct(n * isz, stream), out(n_out * osz, stream);
  ct.upload(static_cast<const char*>(h.ct.data), n * isz);
  DemArgs d = h;
  d.ct.data = ct.p;
  d.out = out.p;
  dem(d);
  out.download(static_cast<char*>(h.out), n_out * osz);
  sync(stream);
}

}  // namespace cuda
}  // namespace rlnfast

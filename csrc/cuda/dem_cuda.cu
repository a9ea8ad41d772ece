// Elasticity and DEM on the GPU: host-side planning (expanded boxes, weights) and launches of the
// kernels of common/dem_kernel.cuh, the same source CuPy compiles (rlnfast/_cupy/dem.py plans alike).
#include <algorithm>
#include <limits>
#include <vector>

#include "common/dem_kernel.cuh"
#include "common/ops.h"
#include "cuda/check.cuh"

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

// A device buffer freed on scope exit (stream-ordered).
template <class T>
struct DevBuf {
  T* p = nullptr;
  cudaStream_t s;
  DevBuf(size_t n, cudaStream_t stream) : s(stream) {
    RLNFAST_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p), sizeof(T) * std::max<size_t>(n, 1), s));
  }
  ~DevBuf() { if (p) cudaFreeAsync(p, s); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
};

// The weights of the three axes packed as [w0z, w1z, w0y, w1y, w0x, w1x] (radius + 1 floats each).
std::vector<float> packed_weights(const DemArgs& a, int r[3], size_t off[6]) {
  std::vector<float> w;
  for (int ax = 0; ax < 3; ++ax) {
    const double sv = a.sigma / a.spacing[ax];
    r[ax] = dem::gaussian_radius(sv);
    std::vector<double> phi(2 * r[ax] + 1), w0(r[ax] + 1), w1(r[ax] + 1);
    dem::gaussian_half_kernels(sv, r[ax], phi.data(), w0.data(), w1.data());
    off[2 * ax] = w.size();
    for (double v : w0) w.push_back((float)v);
    off[2 * ax + 1] = w.size();
    for (double v : w1) w.push_back((float)v);
  }
  return w;
}

}  // namespace

void elasticity(const ElasticityArgs& a) {
  const i64 n = a.ct.size();
  *a.first_nan = -1;
  if (n == 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
  DevBuf<unsigned long long> nan_d(1, stream);
  RLNFAST_CUDA_CHECK(cudaMemsetAsync(nan_d.p, 0xff, sizeof(unsigned long long), stream));
  const dem::ElasticityParams& p = a.params;
  const unsigned grid = grid_for(n, RLNFAST_DEM_BLOCK);
#define RL_E(S, T)                                                                                              \
  case DType::S:                                                                                                \
    if (a.out_f32)                                                                                              \
      rlnfast_elasticity_##S##_f32<<<grid, RLNFAST_DEM_BLOCK, 0, stream>>>(                                     \
          static_cast<const T*>(a.ct.data), n, p.clip_lo, p.clip_hi, p.rho_w, p.gamma, static_cast<float*>(a.out), \
          nan_d.p);                                                                                             \
    else                                                                                                        \
      rlnfast_elasticity_##S##_f64<<<grid, RLNFAST_DEM_BLOCK, 0, stream>>>(                                     \
          static_cast<const T*>(a.ct.data), n, p.clip_lo, p.clip_hi, p.rho_w, p.gamma,                          \
          static_cast<double*>(a.out), nan_d.p);                                                                \
    break;
  switch (a.ct.dtype) { RLNFAST_DEM_FOR_EACH_DTYPE(RL_E) }
#undef RL_E
  RLNFAST_CUDA_CHECK_LAUNCH();
  unsigned long long bad = 0;
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(&bad, nan_d.p, sizeof(bad), cudaMemcpyDeviceToHost, stream));
  RLNFAST_CUDA_CHECK(cudaStreamSynchronize(stream));
  *a.first_nan = bad == std::numeric_limits<unsigned long long>::max() ? -1 : (i64)bad;
}

void dem(const DemArgs& a) {
  for (i64 b = 0; b < a.n_boxes; ++b) a.first_nan[b] = -1;
  if (a.n_boxes == 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
  const i64 dims[3] = {a.ct.nz, a.ct.ny, a.ct.nx};
  int r[3];
  size_t woff[6];
  const std::vector<float> w = packed_weights(a, r, woff);
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
  DevBuf<float> w_d(w.size(), stream);
  DevBuf<unsigned long long> nan_d(a.n_boxes, stream);
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(desc_d.p, desc.data(), sizeof(long long) * desc.size(), cudaMemcpyHostToDevice, stream));
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(w_d.p, w.data(), sizeof(float) * w.size(), cudaMemcpyHostToDevice, stream));
  RLNFAST_CUDA_CHECK(cudaMemsetAsync(nan_d.p, 0xff, sizeof(unsigned long long) * a.n_boxes, stream));
  DevBuf<float> A(voff, stream), B(voff, stream), C(voff, stream), Y(voff, stream), X(voff, stream);
  const dem::ElasticityParams& p = a.params;
  const unsigned xgrid = (unsigned)std::max<long long>(1, std::min<long long>(roff, 1 << 20));
  const size_t shmem = sizeof(float) * (RLNFAST_DEM_XBLOCK + 2 * r[2]);
  if (shmem > 48 * 1024) throw std::invalid_argument("dem: sigma / spacing along x is too large for the CUDA kernel");
#define RL_X(S, T)                                                                                                  \
  case DType::S:                                                                                                    \
    rlnfast_dem_xpass_##S<<<xgrid, RLNFAST_DEM_XBLOCK, shmem, stream>>>(                                            \
        static_cast<const T*>(a.ct.data), a.ct.ny, a.ct.nx, desc_d.p, a.n_boxes, roff, w_d.p + woff[4],             \
        w_d.p + woff[5], r[2], p.clip_lo, p.clip_hi, p.rho_w, p.gamma, A.p, B.p, nan_d.p);                          \
    break;
  switch (a.ct.dtype) { RLNFAST_DEM_FOR_EACH_DTYPE(RL_X) }
#undef RL_X
  RLNFAST_CUDA_CHECK_LAUNCH();
  rlnfast_dem_ypass<<<grid_for(voff, RLNFAST_DEM_BLOCK), RLNFAST_DEM_BLOCK, 0, stream>>>(
      desc_d.p, a.n_boxes, voff, w_d.p + woff[2], w_d.p + woff[3], r[1], A.p, B.p, C.p, Y.p, X.p);
  RLNFAST_CUDA_CHECK_LAUNCH();
  if (a.out_f32)
    rlnfast_dem_zpass_f32<<<grid_for(n_out, RLNFAST_DEM_BLOCK), RLNFAST_DEM_BLOCK, 0, stream>>>(
        desc_d.p, a.n_boxes, n_out, w_d.p + woff[0], w_d.p + woff[1], r[0], C.p, Y.p, X.p, a.spacing[0],
        a.spacing[1], a.spacing[2], a.sigma, static_cast<float*>(a.out));
  else
    rlnfast_dem_zpass_f64<<<grid_for(n_out, RLNFAST_DEM_BLOCK), RLNFAST_DEM_BLOCK, 0, stream>>>(
        desc_d.p, a.n_boxes, n_out, w_d.p + woff[0], w_d.p + woff[1], r[0], C.p, Y.p, X.p, a.spacing[0],
        a.spacing[1], a.spacing[2], a.sigma, static_cast<double*>(a.out));
  RLNFAST_CUDA_CHECK_LAUNCH();
  std::vector<unsigned long long> bad(a.n_boxes);
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(bad.data(), nan_d.p, sizeof(unsigned long long) * a.n_boxes,
                                     cudaMemcpyDeviceToHost, stream));
  RLNFAST_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (i64 b = 0; b < a.n_boxes; ++b)
    a.first_nan[b] = bad[b] == std::numeric_limits<unsigned long long>::max() ? -1 : (i64)bad[b];
}

void elasticity_host(const ElasticityArgs& h) {
  cudaStream_t stream = static_cast<cudaStream_t>(h.stream);
  const i64 n = h.ct.size();
  const size_t isz = dtype_size(h.ct.dtype), osz = h.out_f32 ? sizeof(float) : sizeof(double);
  DevBuf<char> ct(n * isz, stream), out(n * osz, stream);
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(ct.p, h.ct.data, n * isz, cudaMemcpyHostToDevice, stream));
  ElasticityArgs d = h;
  d.ct.data = ct.p;
  d.out = out.p;
  elasticity(d);
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(h.out, out.p, n * osz, cudaMemcpyDeviceToHost, stream));
  RLNFAST_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void dem_host(const DemArgs& h) {
  cudaStream_t stream = static_cast<cudaStream_t>(h.stream);
  const i64 n = h.ct.size();
  const i64 n_out = h.out_offsets[h.n_boxes];
  const size_t isz = dtype_size(h.ct.dtype), osz = h.out_f32 ? sizeof(float) : sizeof(double);
  DevBuf<char> ct(n * isz, stream), out(n_out * osz, stream);
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(ct.p, h.ct.data, n * isz, cudaMemcpyHostToDevice, stream));
  DemArgs d = h;
  d.ct.data = ct.p;
  d.out = out.p;
  dem(d);
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(h.out, out.p, n_out * osz, cudaMemcpyDeviceToHost, stream));
  RLNFAST_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace cuda
}  // namespace rlnfast

// The elasticity and DEM CUDA kernels, included by csrc/cuda/dem_cuda.cu and compiled by CuPy (NVRTC)
// from the same file, so both GPU backends run identical code. The HU -> E math is dem_math.h, shared
// with the CPU loops.
//
// DEM runs on a batch of boxes (whole-volume mode: one box = the volume). Each box is the output box
// grown by the filter radius and clipped to the volume (the "expanded" box); the three separable passes
// run on the expanded boxes packed one after the other, clamping at the expanded box's border: where
// that border is the volume's, this is 'nearest' at the volume border, and elsewhere it lies a full
// radius away from every output voxel, so a box's values equal the whole-volume map.
//   x pass (E fused in): A = S_x E, B = G_x E       one block per row, the row's E staged in shared memory
//   y pass:              C = S_y A, Y = G_y A, X = S_y B
//   z pass:              DEM = sigma sqrt((G_z C / s_z)^2 + (S_z Y / s_y)^2 + (S_z X / s_x)^2), output boxes only
// F is the storage and accumulation type of the passes: float for a float32 map (the tolerance table's float32
// row: 1e-5 of the maximum DEM), double for a float64 map, which is what feeds features: DEM_original_firstorder_*
// then agree with the CPU backend (also double) to 1e-9, not to float32's bin-flipping 1e-7.
#pragma once
#include "dem_math.h"

// Columns of one box descriptor (int64), built on the host by dem_cuda.cu and rlnfast/_cupy/dem.py.
#define RLNFAST_DEM_BZ0 0     // expanded box origin in the volume (z, y, x)
#define RLNFAST_DEM_BY0 1
#define RLNFAST_DEM_BX0 2
#define RLNFAST_DEM_BNZ 3     // expanded box size
#define RLNFAST_DEM_BNY 4
#define RLNFAST_DEM_BNX 5
#define RLNFAST_DEM_VOFF 6    // offset of the expanded box in the packed intermediates
#define RLNFAST_DEM_ROFF 7    // first row (z, y) of the box among all packed rows
#define RLNFAST_DEM_IZ 8      // output box origin inside the expanded box
#define RLNFAST_DEM_IY 9
#define RLNFAST_DEM_IX 10
#define RLNFAST_DEM_INZ 11    // output box size
#define RLNFAST_DEM_INY 12
#define RLNFAST_DEM_INX 13
#define RLNFAST_DEM_OOFF 14   // offset of the output box in the output
#define RLNFAST_DEM_NCOL 16
#define RLNFAST_DEM_XBLOCK 128
#define RLNFAST_DEM_BLOCK 256

namespace rlnfast {
namespace dem {

// The last box b with desc[b][col] <= idx (offsets are strictly increasing: no box is empty).
__device__ __forceinline__ long long find_box(const long long* desc, long long n_boxes, int col, long long idx) {
  long long lo = 0, hi = n_boxes - 1;
  while (lo < hi) {
    const long long mid = (lo + hi + 1) / 2;
    if (desc[mid * RLNFAST_DEM_NCOL + col] <= idx) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

__device__ __forceinline__ long long clampll(long long v, long long lo, long long hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

__device__ __forceinline__ float dem_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double dem_sqrt(double v) { return sqrt(v); }

template <class T, class F>
__device__ __forceinline__ void dem_xpass(const T* __restrict__ ct, long long vny, long long vnx,
                                          const long long* __restrict__ desc, long long n_boxes, long long n_rows,
                                          const F* __restrict__ w0, const F* __restrict__ w1, int rx,
                                          ElasticityParams p, F* __restrict__ A, F* __restrict__ B,
                                          unsigned long long* __restrict__ first_nan) {
  // RLNFAST_DEM_XBLOCK + 2 rx values of E (raw bytes: one extern __shared__ symbol for both types of F)
  RLNFAST_DYNAMIC_SHARED(unsigned char, sh_raw);
  F* sh = reinterpret_cast<F*>(sh_raw);
  const int t = threadIdx.x;
  for (long long row = blockIdx.x; row < n_rows; row += gridDim.x) {
    const long long b = find_box(desc, n_boxes, RLNFAST_DEM_ROFF, row);
    const long long* d = desc + b * RLNFAST_DEM_NCOL;
    const long long lr = row - d[RLNFAST_DEM_ROFF];
    const long long ny = d[RLNFAST_DEM_BNY], nx = d[RLNFAST_DEM_BNX];
    const long long z = lr / ny, y = lr - z * ny;
    const long long vrow = ((d[RLNFAST_DEM_BZ0] + z) * vny + d[RLNFAST_DEM_BY0] + y) * vnx + d[RLNFAST_DEM_BX0];
    const T* src = ct + vrow;
    F* a = A + d[RLNFAST_DEM_VOFF] + lr * nx;
    F* bo = B + d[RLNFAST_DEM_VOFF] + lr * nx;
    for (long long x0 = 0; x0 < nx; x0 += RLNFAST_DEM_XBLOCK) {
      __syncthreads();
      for (int j = t; j < RLNFAST_DEM_XBLOCK + 2 * rx; j += RLNFAST_DEM_XBLOCK) {
        const long long x = clampll(x0 - rx + j, 0, nx - 1);
        const double v = (double)src[x];
        if (v != v) atomicMin(first_nan + b, (unsigned long long)(vrow + x));
        sh[j] = (F)elasticity(v, p);
      }
      __syncthreads();
      const long long x = x0 + t;
      if (x < nx) {
        const F* s = sh + t + rx;
        F sm = w0[0] * s[0], dv = 0;
        for (int k = 1; k <= rx; ++k) {
          sm += w0[k] * (s[k] + s[-k]);
          dv += w1[k] * (s[k] - s[-k]);
        }
        a[x] = sm;
        bo[x] = dv;
      }
    }
  }
}

template <class F>
__device__ __forceinline__ void dem_ypass(const long long* __restrict__ desc, long long n_boxes, long long n_vox,
                                          const F* __restrict__ w0, const F* __restrict__ w1, int ry,
                                          const F* __restrict__ A, const F* __restrict__ B,
                                          F* __restrict__ C, F* __restrict__ Y, F* __restrict__ X) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n_vox; i += (long long)gridDim.x * blockDim.x) {
    const long long b = find_box(desc, n_boxes, RLNFAST_DEM_VOFF, i);
    const long long* d = desc + b * RLNFAST_DEM_NCOL;
    const long long l = i - d[RLNFAST_DEM_VOFF];
    const long long ny = d[RLNFAST_DEM_BNY], nx = d[RLNFAST_DEM_BNX];
    const long long x = l % nx, zy = l / nx, y = zy % ny;
    const long long base = i - y * nx;   // row y = 0 of this (z, x) column
    F c = w0[0] * A[i], yy = 0, xx = w0[0] * B[i];
    for (int k = 1; k <= ry; ++k) {
      const long long up = base + clampll(y + k, 0, ny - 1) * nx, dn = base + clampll(y - k, 0, ny - 1) * nx;
      const F ap = A[up], am = A[dn];
      c += w0[k] * (ap + am);
      yy += w1[k] * (ap - am);
      xx += w0[k] * (B[up] + B[dn]);
    }
    C[i] = c;
    Y[i] = yy;
    X[i] = xx;
    (void)x;
  }
}

template <class F, class O>
__device__ __forceinline__ void dem_zpass(const long long* __restrict__ desc, long long n_boxes, long long n_out,
                                          const F* __restrict__ w0, const F* __restrict__ w1, int rz,
                                          const F* __restrict__ C, const F* __restrict__ Y,
                                          const F* __restrict__ X, double sz, double sy, double sx, double sigma,
                                          O* __restrict__ out) {
  const F isz = (F)(1.0 / sz), isy = (F)(1.0 / sy), isx = (F)(1.0 / sx), sg = (F)sigma;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n_out; i += (long long)gridDim.x * blockDim.x) {
    const long long b = find_box(desc, n_boxes, RLNFAST_DEM_OOFF, i);
    const long long* d = desc + b * RLNFAST_DEM_NCOL;
    const long long l = i - d[RLNFAST_DEM_OOFF];
    const long long inx = d[RLNFAST_DEM_INX], iny = d[RLNFAST_DEM_INY];
    const long long lx = l % inx, lzy = l / inx, ly = lzy % iny, lz = lzy / iny;
    const long long ny = d[RLNFAST_DEM_BNY], nx = d[RLNFAST_DEM_BNX], nz = d[RLNFAST_DEM_BNZ];
    const long long z = lz + d[RLNFAST_DEM_IZ], y = ly + d[RLNFAST_DEM_IY], x = lx + d[RLNFAST_DEM_IX];
    const long long plane = ny * nx;
    const long long col = d[RLNFAST_DEM_VOFF] + y * nx + x;
    const long long c0 = col + z * plane;
    F gz = 0, gy = w0[0] * Y[c0], gx = w0[0] * X[c0];
    for (int k = 1; k <= rz; ++k) {
      const long long up = col + clampll(z + k, 0, nz - 1) * plane, dn = col + clampll(z - k, 0, nz - 1) * plane;
      gz += w1[k] * (C[up] - C[dn]);
      gy += w0[k] * (Y[up] + Y[dn]);
      gx += w0[k] * (X[up] + X[dn]);
    }
    gz *= isz;
    gy *= isy;
    gx *= isx;
    out[i] = (O)(sg * dem_sqrt(gz * gz + gy * gy + gx * gx));
  }
}

template <class T, class O>
__device__ __forceinline__ void elasticity_map(const T* __restrict__ ct, long long n, ElasticityParams p,
                                               O* __restrict__ out, unsigned long long* __restrict__ first_nan) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const double v = (double)ct[i];
    if (v != v) atomicMin(first_nan, (unsigned long long)i);
    out[i] = (O)elasticity(v, p);
  }
}

}  // namespace dem
}  // namespace rlnfast

// extern "C" entry points with fixed names, one per input dtype, for CuPy's RawModule and the .cu launcher.
// Passes without a suffix work in float (float32 maps); the _d passes in double (float64 maps).
#define RLNFAST_DEM_XPASS_T(NAME, T, F)                                                                        \
  extern "C" __global__ void __launch_bounds__(RLNFAST_DEM_XBLOCK) NAME(                                       \
      const T* ct, long long vny, long long vnx, const long long* desc, long long n_boxes, long long n_rows,   \
      const F* w0, const F* w1, int rx, double clip_lo, double clip_hi, double rho_w, double gamma, F* A, F* B, \
      unsigned long long* first_nan) {                                                                         \
    rlnfast::dem::ElasticityParams p;                                                                           \
    p.clip_lo = clip_lo;                                                                                        \
    p.clip_hi = clip_hi;                                                                                        \
    p.rho_w = rho_w;                                                                                            \
    p.gamma = gamma;                                                                                            \
    rlnfast::dem::dem_xpass<T, F>(ct, vny, vnx, desc, n_boxes, n_rows, w0, w1, rx, p, A, B, first_nan);        \
  }
#define RLNFAST_DEM_XPASS(SUFFIX, T) RLNFAST_DEM_XPASS_T(rlnfast_dem_xpass_##SUFFIX, T, float)
#define RLNFAST_DEM_XPASS_D(SUFFIX, T) RLNFAST_DEM_XPASS_T(rlnfast_dem_xpass_##SUFFIX##_d, T, double)

#define RLNFAST_ELASTICITY(SUFFIX, T, OSUFFIX, O)                                                              \
  extern "C" __global__ void rlnfast_elasticity_##SUFFIX##_##OSUFFIX(const T* ct, long long n, double clip_lo,  \
                                                                     double clip_hi, double rho_w, double gamma, \
                                                                     O* out, unsigned long long* first_nan) {    \
    rlnfast::dem::ElasticityParams p;                                                                           \
    p.clip_lo = clip_lo;                                                                                        \
    p.clip_hi = clip_hi;                                                                                        \
    p.rho_w = rho_w;                                                                                            \
    p.gamma = gamma;                                                                                            \
    rlnfast::dem::elasticity_map<T, O>(ct, n, p, out, first_nan);                                               \
  }

#define RLNFAST_DEM_FOR_EACH_DTYPE(M) \
  M(u8, unsigned char)                \
  M(i8, signed char)                  \
  M(u16, unsigned short)              \
  M(i16, short)                       \
  M(u32, unsigned int)                \
  M(i32, int)                         \
  M(i64, long long)                   \
  M(f32, float)                       \
  M(f64, double)

RLNFAST_DEM_FOR_EACH_DTYPE(RLNFAST_DEM_XPASS)
RLNFAST_DEM_FOR_EACH_DTYPE(RLNFAST_DEM_XPASS_D)

#define RLNFAST_ELASTICITY_F32(SUFFIX, T) RLNFAST_ELASTICITY(SUFFIX, T, f32, float)
#define RLNFAST_ELASTICITY_F64(SUFFIX, T) RLNFAST_ELASTICITY(SUFFIX, T, f64, double)
RLNFAST_DEM_FOR_EACH_DTYPE(RLNFAST_ELASTICITY_F32)
RLNFAST_DEM_FOR_EACH_DTYPE(RLNFAST_ELASTICITY_F64)

extern "C" __global__ void __launch_bounds__(RLNFAST_DEM_BLOCK)
rlnfast_dem_ypass(const long long* desc, long long n_boxes, long long n_vox, const float* w0, const float* w1, int ry,
                  const float* A, const float* B, float* C, float* Y, float* X) {
  rlnfast::dem::dem_ypass<float>(desc, n_boxes, n_vox, w0, w1, ry, A, B, C, Y, X);
}

extern "C" __global__ void __launch_bounds__(RLNFAST_DEM_BLOCK)
rlnfast_dem_ypass_d(const long long* desc, long long n_boxes, long long n_vox, const double* w0, const double* w1,
                    int ry, const double* A, const double* B, double* C, double* Y, double* X) {
  rlnfast::dem::dem_ypass<double>(desc, n_boxes, n_vox, w0, w1, ry, A, B, C, Y, X);
}

extern "C" __global__ void __launch_bounds__(RLNFAST_DEM_BLOCK)
rlnfast_dem_zpass_f32(const long long* desc, long long n_boxes, long long n_out, const float* w0, const float* w1,
                      int rz, const float* C, const float* Y, const float* X, double sz, double sy, double sx,
                      double sigma, float* out) {
  rlnfast::dem::dem_zpass<float, float>(desc, n_boxes, n_out, w0, w1, rz, C, Y, X, sz, sy, sx, sigma, out);
}

extern "C" __global__ void __launch_bounds__(RLNFAST_DEM_BLOCK)
rlnfast_dem_zpass_f64(const long long* desc, long long n_boxes, long long n_out, const float* w0, const float* w1,
                      int rz, const float* C, const float* Y, const float* X, double sz, double sy, double sx,
                      double sigma, double* out) {
  rlnfast::dem::dem_zpass<float, double>(desc, n_boxes, n_out, w0, w1, rz, C, Y, X, sz, sy, sx, sigma, out);
}

extern "C" __global__ void __launch_bounds__(RLNFAST_DEM_BLOCK)
rlnfast_dem_zpass_d(const long long* desc, long long n_boxes, long long n_out, const double* w0, const double* w1,
                    int rz, const double* C, const double* Y, const double* X, double sz, double sy, double sx,
                    double sigma, double* out) {
  rlnfast::dem::dem_zpass<double, double>(desc, n_boxes, n_out, w0, w1, rz, C, Y, X, sz, sy, sx, sigma, out);
}

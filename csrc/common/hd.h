// Portability macros so the *_math.h headers compile as plain C++, under nvcc and under NVRTC (CuPy).
#pragma once
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define RLNFAST_HD __host__ __device__ __forceinline__
#else
#define RLNFAST_HD inline
#endif
#ifndef __CUDACC_RTC__
#include <cmath>
#include <cstdint>
#endif
#ifdef __CUDACC_RTC__
#define RLNFAST_NAN (__longlong_as_double(0x7ff8000000000000LL))
#else
#define RLNFAST_NAN (NAN)
#endif
// Dynamic shared memory (the launch's shmem bytes) as `T* name`: extern __shared__ on the GPU, the launch's
// buffer in the emulated build (csrc/emulate/cuda_runtime.h), where `extern __shared__` cannot be expressed.
#ifdef RLNFAST_CUDA_EMULATED
#define RLNFAST_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(::rlnfast_emu::dynamic_shared())
#else
#define RLNFAST_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif
namespace rlnfast {
typedef long long i64;

// Round-to-nearest product and sum that no compiler may fuse into a multiply-add. nvcc and NVRTC contract
// a * b + c into one FMA by default (and so do host compilers on aarch64, or with -mfma and
// -ffp-contract=fast); where the shared math replicates NumPy's rounding (bin edges, percentile
// interpolation, the density fit) every product and sum must be rounded on its own, as NumPy does.
// Device code: the _rn intrinsics, which CUDA never contracts. Host code: an empty asm that makes the
// product opaque, so it is rounded to double (float) before the add.
#if defined(__CUDA_ARCH__)
RLNFAST_HD double rl_mul(double a, double b) { return __dmul_rn(a, b); }
RLNFAST_HD double rl_add(double a, double b) { return __dadd_rn(a, b); }
RLNFAST_HD float rl_mulf(float a, float b) { return __fmul_rn(a, b); }
RLNFAST_HD float rl_addf(float a, float b) { return __fadd_rn(a, b); }
#else
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define RLNFAST_OPAQUE(v) __asm__("" : "+x"(v))
#elif defined(__GNUC__) && defined(__aarch64__)
#define RLNFAST_OPAQUE(v) __asm__("" : "+w"(v))
#else
#define RLNFAST_OPAQUE(v) do { volatile auto rl_opaque_ = (v); (v) = rl_opaque_; } while (0)
#endif
RLNFAST_HD double rl_mul(double a, double b) { double p = a * b; RLNFAST_OPAQUE(p); return p; }
RLNFAST_HD double rl_add(double a, double b) { double s = a + b; RLNFAST_OPAQUE(s); return s; }
RLNFAST_HD float rl_mulf(float a, float b) { float p = a * b; RLNFAST_OPAQUE(p); return p; }
RLNFAST_HD float rl_addf(float a, float b) { float s = a + b; RLNFAST_OPAQUE(s); return s; }
#endif
}

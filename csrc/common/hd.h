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
namespace rlnfast {
typedef long long i64;
}

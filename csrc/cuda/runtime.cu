// The device-traffic counters and the device summary shared by every launcher (csrc/cuda/runtime.cuh).
#include <string>

#include "common/ops.h"
#include "cuda/runtime.cuh"

namespace rlnfast {
namespace cuda {

std::atomic<long long> g_counters[(int)Counter::N];

std::string device_summary() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    cudaGetLastError();
    return "";
  }
  int dev = 0;
  RLNFAST_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp p;
  RLNFAST_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
#ifdef RLNFAST_CUDA_EMULATED
  return std::string(p.name);
#else
  return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ")";
#endif
}

}  // namespace cuda
}  // namespace rlnfast

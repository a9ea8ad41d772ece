// Error checking for every CUDA runtime call and kernel launch: failures become C++ exceptions with the call.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#define RLNFAST_CUDA_CHECK(expr)                                                                  \
  do {                                                                                            \
    cudaError_t err__ = (expr);                                                                   \
    if (err__ != cudaSuccess)                                                                     \
      throw std::runtime_error(std::string("CUDA error in ") + #expr + " at " + __FILE__ + ":" +  \
                               std::to_string(__LINE__) + ": " + cudaGetErrorString(err__));       \
  } while (0)

#define RLNFAST_CUDA_CHECK_LAUNCH() RLNFAST_CUDA_CHECK(cudaGetLastError())

// Block-wide sum for the shared CUDA/NVRTC kernels: every thread passes one value, every thread gets the sum.
#pragma once

namespace rlnfast {

// BLOCK must equal blockDim.x and be a power of two; sh points to BLOCK elements of shared memory.
// Call from all threads of the block (it synchronises).
template <int BLOCK, class T>
__device__ __forceinline__ T block_sum(T x, T* sh) {
  const int t = threadIdx.x;
  __syncthreads();
  sh[t] = x;
  __syncthreads();
  for (int s = BLOCK / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  T r = sh[0];
  __syncthreads();
  return r;
}

}  // namespace rlnfast

// What every launcher in csrc/cuda uses to talk to the CUDA runtime: counted copies, allocations,
// synchronisations and launches (rlnfast.device_stats), device scratch freed on scope exit (RAII, also when a
// check throws), and a guard that makes the device of the input arrays current (and restores the caller's).
// The same code compiles under nvcc and, in the RLNFAST_CUDA=EMULATE build, as C++ against
// csrc/emulate/cuda_runtime.h.
#pragma once
#include <algorithm>
#include <cstddef>

#include "cuda/check.cuh"
#include "cuda/stats.h"

namespace rlnfast {
namespace cuda {

inline void copy_h2d(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  if (!bytes) return;
  count(Counter::h2d);
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
}
inline void copy_d2h(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  if (!bytes) return;
  count(Counter::d2h);
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
}
inline void sync(cudaStream_t s) {
  count(Counter::sync);
  RLNFAST_CUDA_CHECK(cudaStreamSynchronize(s));
}

// A stream-ordered device buffer of n elements (at least one), freed on scope exit.
template <class T>
struct DevBuf {
  T* p = nullptr;
  cudaStream_t s;
  DevBuf(size_t n, cudaStream_t stream) : s(stream) {
    count(Counter::alloc);
    RLNFAST_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p), sizeof(T) * std::max<size_t>(n, 1), s));
  }
  ~DevBuf() {
    if (p) cudaFreeAsync(p, s);
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void upload(const T* h, size_t n) { copy_h2d(p, h, sizeof(T) * n, s); }
  void download(T* h, size_t n) const { copy_d2h(h, p, sizeof(T) * n, s); }
  void fill_bytes(int v, size_t n) {
    if (n) RLNFAST_CUDA_CHECK(cudaMemsetAsync(p, v, sizeof(T) * n, s));
  }
};

// Makes the device that owns `p` current for the scope (a no-op for host memory or the current device),
// then restores the caller's device: scratch, launches and the stream all belong to the input's device.
class DeviceGuard {
 public:
  explicit DeviceGuard(const void* p) {
    RLNFAST_CUDA_CHECK(cudaGetDevice(&old_));
    cudaPointerAttributes attr;
    if (p == nullptr || cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
      cudaGetLastError();   // an unregistered host pointer: stay where we are
      return;
    }
    if ((attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged) && attr.device >= 0 &&
        attr.device != old_) {
      RLNFAST_CUDA_CHECK(cudaSetDevice(attr.device));
      switched_ = true;
    }
  }
  ~DeviceGuard() {
    if (switched_) cudaSetDevice(old_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int old_ = 0;
  bool switched_ = false;
};

}  // namespace cuda
}  // namespace rlnfast

// kernel<<<grid, block, shmem, stream>>>(args...) written RLNFAST_LAUNCH(kernel, grid, block, shmem, stream)(args...):
// counted, and on the emulated build run on CPU threads. The only launch syntax the .cu files use.
#ifdef RLNFAST_CUDA_EMULATED
#define RLNFAST_LAUNCH(kernel, grid, block, shmem, stream) \
  ::rlnfast::cuda::count(::rlnfast::cuda::Counter::launch), \
      ::rlnfast_emu::launch_config(kernel, grid, block, shmem, stream)
#else
#define RLNFAST_LAUNCH(kernel, grid, block, shmem, stream) \
  ::rlnfast::cuda::count(::rlnfast::cuda::Counter::launch), kernel<<<grid, block, shmem, stream>>>
#endif

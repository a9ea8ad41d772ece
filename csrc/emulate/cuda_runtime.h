// A small host runtime that lets csrc/cuda/*.cu and csrc/common/*_kernel.cuh compile as plain C++ and run
// on CPU threads (the RLNFAST_CUDA=EMULATE build; CI has no GPU). It stands in for <cuda_runtime.h>:
//   - a kernel launch (RLNFAST_LAUNCH in cuda/runtime.cuh) runs the grid's blocks one after the other; the
//     threads of a block are real std::threads running concurrently, and __syncthreads() is a real barrier
//     (a block whose threads never synchronise lets them run on into their next blocks);
//   - __shared__ variables are function statics: one copy, which the one running block owns (dynamic shared
//     memory, RLNFAST_DYNAMIC_SHARED, is a fresh heap buffer per launch, so AddressSanitizer sees overruns);
//   - atomics are GCC __atomic builtins; threadIdx/blockIdx/blockDim/gridDim are thread-local;
//   - device memory is host memory from malloc (ASan checks every access), tracked per (emulated) device;
//     copies, memsets, streams and events are synchronous host calls;
//   - a launch checks that every pointer argument which is device memory belongs to the current device
//     (what a real GPU turns into an illegal-address error or silent wrong-device traffic).
// Not emulated: warps (no __shfl*, no warp-synchronous code: the kernels use none), texture memory, graphs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
typedef dim3 uint3;

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidDevice = 101,
  cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaMemoryType { cudaMemoryTypeUnregistered = 0, cudaMemoryTypeHost = 1, cudaMemoryTypeDevice = 2, cudaMemoryTypeManaged = 3 };
struct cudaPointerAttributes {
  cudaMemoryType type;
  int device;
  void* devicePointer;
  void* hostPointer;
};
struct cudaDeviceProp {
  char name[256];
  int major, minor;
  size_t totalGlobalMem;
  int multiProcessorCount;
};
struct CUstream_st;
typedef CUstream_st* cudaStream_t;
struct CUevent_st;
typedef CUevent_st* cudaEvent_t;

// The runtime API the launchers use (csrc/emulate/cuda_runtime.cpp).
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDevice(int* d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d);
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* a, const void* p);
cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t s);
cudaError_t cudaFreeAsync(void* p, cudaStream_t s);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind k);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind k, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int v, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int v, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
template <class T>
inline cudaError_t cudaMalloc(T** p, size_t bytes) { return cudaMalloc(reinterpret_cast<void**>(p), bytes); }
template <class T>
inline cudaError_t cudaMallocAsync(T** p, size_t bytes, cudaStream_t s) {
  return cudaMallocAsync(reinterpret_cast<void**>(p), bytes, s);
}

namespace rlnfast_emu {

extern thread_local dim3 tl_threadIdx, tl_blockIdx, tl_blockDim, tl_gridDim;
void syncthreads();
void* dynamic_shared();

// Which emulated device owns p (-1: not device memory).
int device_of(const void* p);
int current_device();
// Runs body once per thread of every block of the grid (blocks in order, threads of a block concurrently).
void run_grid(dim3 grid, dim3 block, size_t shmem, const std::function<void()>& body);
// Test hooks (rlnfast._core.cuda.emulator): register host memory as device memory of a device, and more.
void register_device_memory(const void* p, size_t bytes, int device);
void unregister_device_memory(const void* p);
void set_device_count(int n);
int last_launch_device();
long long live_allocations();

template <class A>
inline void check_pointer_device(const A& a, int dev) {
  if constexpr (std::is_pointer<A>::value) {
    const int d = device_of(static_cast<const void*>(a));
    if (d >= 0 && d != dev)
      throw std::runtime_error("emulated CUDA: a kernel launched on device " + std::to_string(dev) +
                               " got a pointer to memory of device " + std::to_string(d) +
                               " (illegal address on a real GPU)");
  }
}

// kernel<<<grid, block, shmem, stream>>>(args...) as launch_config(kernel, grid, block, shmem, stream)(args...).
template <class K>
struct LaunchConfig {
  K kernel;
  dim3 grid, block;
  size_t shmem;
  template <class... A>
  void operator()(A&&... args) const {
    const int dev = current_device();
    (check_pointer_device(args, dev), ...);
    std::tuple<std::decay_t<A>...> t(std::forward<A>(args)...);
    K k = kernel;
    run_grid(grid, block, shmem, [&]() { std::apply(k, t); });
  }
};
template <class K>
inline LaunchConfig<K> launch_config(K kernel, dim3 grid, dim3 block, size_t shmem, cudaStream_t) {
  return LaunchConfig<K>{kernel, grid, block, shmem};
}

// Device atomics (return the old value, as CUDA's do).
template <class T>
inline T atomic_add(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
template <class T>
inline T atomic_min(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (v < old && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
  return old;
}
template <class T>
inline T atomic_max(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (v > old && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
  return old;
}

}  // namespace rlnfast_emu

#define threadIdx (::rlnfast_emu::tl_threadIdx)
#define blockIdx (::rlnfast_emu::tl_blockIdx)
#define blockDim (::rlnfast_emu::tl_blockDim)
#define gridDim (::rlnfast_emu::tl_gridDim)

inline void __syncthreads() { ::rlnfast_emu::syncthreads(); }
inline int atomicAdd(int* p, int v) { return rlnfast_emu::atomic_add(p, v); }
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) { return rlnfast_emu::atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return rlnfast_emu::atomic_add(p, v); }
inline int atomicMin(int* p, int v) { return rlnfast_emu::atomic_min(p, v); }
inline int atomicMax(int* p, int v) { return rlnfast_emu::atomic_max(p, v); }
inline unsigned int atomicMin(unsigned int* p, unsigned int v) { return rlnfast_emu::atomic_min(p, v); }
inline unsigned int atomicMax(unsigned int* p, unsigned int v) { return rlnfast_emu::atomic_max(p, v); }
inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) { return rlnfast_emu::atomic_min(p, v); }
inline unsigned long long atomicMax(unsigned long long* p, unsigned long long v) { return rlnfast_emu::atomic_max(p, v); }
inline long long atomicMin(long long* p, long long v) { return rlnfast_emu::atomic_min(p, v); }
inline long long atomicMax(long long* p, long long v) { return rlnfast_emu::atomic_max(p, v); }

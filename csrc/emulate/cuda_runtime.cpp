// The host runtime behind csrc/emulate/cuda_runtime.h (see there for what is emulated and how).
#include "cuda_runtime.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace rlnfast_emu {

thread_local dim3 tl_threadIdx, tl_blockIdx, tl_blockDim, tl_gridDim;

namespace {

// A reusable barrier for the threads of one block (generation-counted, mutex + condition variable).
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> l(m_);
    const unsigned long g = gen_;
    if (++count_ == n_) {
      count_ = 0;
      ++gen_;
      cv_.notify_all();
    } else {
      cv_.wait(l, [&] { return gen_ != g; });
    }
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int n_, count_ = 0;
  unsigned long gen_ = 0;
};

thread_local Barrier* tl_barrier = nullptr;
thread_local bool tl_synced = false;   // this thread called __syncthreads() in its current block
thread_local void* tl_dynamic_shared = nullptr;
thread_local int tl_device = 0;

std::mutex g_launch_mutex;     // one grid at a time: __shared__ statics belong to the running block
std::atomic<int> g_device_count{1};
std::atomic<int> g_last_launch_device{-1};

struct Allocation {
  size_t bytes;
  int device;
  bool owned;   // from cudaMalloc (freed by cudaFree), not a registered host range
};
std::mutex g_mem_mutex;
std::map<uintptr_t, Allocation> g_mem;   // start address -> allocation

}  // namespace

void syncthreads() {
  if (!tl_barrier) throw std::logic_error("emulated CUDA: __syncthreads() outside a kernel");
  tl_synced = true;
  tl_barrier->wait();
}

void* dynamic_shared() { return tl_dynamic_shared; }

int device_of(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> l(g_mem_mutex);
  auto it = g_mem.upper_bound(a);
  if (it == g_mem.begin()) return -1;
  --it;
  if (a >= it->first + std::max<size_t>(it->second.bytes, 1)) return -1;
  return it->second.device;
}

int current_device() { return tl_device; }

void run_grid(dim3 grid, dim3 block, size_t shmem, const std::function<void()>& body) {
  const long long nthreads = (long long)block.x * block.y * block.z;
  if (nthreads <= 0 || nthreads > 1024) throw std::invalid_argument("emulated CUDA: block size must be 1..1024");
  if ((long long)grid.x * grid.y * grid.z <= 0) throw std::invalid_argument("emulated CUDA: empty grid");
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  g_last_launch_device = tl_device;
  // 16-byte aligned dynamic shared memory, exactly shmem bytes (ASan flags a read past the end).
  std::unique_ptr<char[]> shared(shmem ? new char[shmem] : nullptr);
  Barrier barrier((int)nthreads);
  std::exception_ptr error;
  std::mutex error_mutex;
  const int device = tl_device;
  auto worker = [&](unsigned tx, unsigned ty, unsigned tz) {
    tl_threadIdx = dim3(tx, ty, tz);
    tl_blockDim = block;
    tl_gridDim = grid;
    tl_barrier = &barrier;
    tl_dynamic_shared = shared.get();
    tl_device = device;
    for (unsigned bz = 0; bz < grid.z; ++bz)
      for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned bx = 0; bx < grid.x; ++bx) {
          tl_blockIdx = dim3(bx, by, bz);
          tl_synced = false;
          try {
            body();
          } catch (...) {
            // A kernel that throws cannot be continued: report it and abort (the other threads may be
            // waiting at a barrier this one never reaches).
            std::lock_guard<std::mutex> l(error_mutex);
            if (!error) error = std::current_exception();
            std::fprintf(stderr, "emulated CUDA: exception in a kernel thread\n");
            std::abort();
          }
          // A block that synchronised may share __shared__ data between its threads: they all finish it before
          // the next block reuses the statics. A block that never called __syncthreads() cannot have (CUDA
          // requires the barrier for that, and calls it uniformly), so its threads run on into their next
          // blocks like the independent blocks of a GPU: no barrier, far fewer context switches.
          if (tl_synced) barrier.wait();
        }
    tl_barrier = nullptr;
    tl_dynamic_shared = nullptr;
  };
  std::vector<std::thread> threads;
  threads.reserve((size_t)nthreads);
  for (unsigned tz = 0; tz < block.z; ++tz)
    for (unsigned ty = 0; ty < block.y; ++ty)
      for (unsigned tx = 0; tx < block.x; ++tx) threads.emplace_back(worker, tx, ty, tz);
  for (auto& t : threads) t.join();
}

void register_device_memory(const void* p, size_t bytes, int device) {
  std::lock_guard<std::mutex> l(g_mem_mutex);
  g_mem[reinterpret_cast<uintptr_t>(p)] = Allocation{bytes, device, false};
}

void unregister_device_memory(const void* p) {
  std::lock_guard<std::mutex> l(g_mem_mutex);
  auto it = g_mem.find(reinterpret_cast<uintptr_t>(p));
  if (it != g_mem.end() && !it->second.owned) g_mem.erase(it);
}

void set_device_count(int n) {
  if (n < 1) throw std::invalid_argument("emulated CUDA: device count must be >= 1");
  g_device_count = n;
}

int last_launch_device() { return g_last_launch_device; }

long long live_allocations() {
  std::lock_guard<std::mutex> l(g_mem_mutex);
  long long n = 0;
  for (const auto& kv : g_mem) n += kv.second.owned;
  return n;
}

}  // namespace rlnfast_emu

using namespace rlnfast_emu;

namespace {
thread_local cudaError_t tl_last_error = cudaSuccess;
cudaError_t fail(cudaError_t e) {
  tl_last_error = e;
  return e;
}
}  // namespace

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    default: return "unspecified launch failure";
  }
}
cudaError_t cudaGetLastError() {
  const cudaError_t e = tl_last_error;
  tl_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return tl_last_error; }
cudaError_t cudaGetDeviceCount(int* n) {
  *n = g_device_count;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  *d = tl_device;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
  if (d < 0 || d >= g_device_count) return fail(cudaErrorInvalidDevice);
  tl_device = d;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (d < 0 || d >= g_device_count) return fail(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof(*p));
  std::snprintf(p->name, sizeof(p->name), "emulated CUDA device %d (CPU threads)", d);
  p->major = 0;
  p->minor = 0;
  p->totalGlobalMem = (size_t)1 << 34;
  p->multiProcessorCount = (int)std::max(1u, std::thread::hardware_concurrency());
  return cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* a, const void* p) {
  const int d = device_of(p);
  a->type = d >= 0 ? cudaMemoryTypeDevice : cudaMemoryTypeUnregistered;
  a->device = d >= 0 ? d : -2;
  a->devicePointer = d >= 0 ? const_cast<void*>(p) : nullptr;
  a->hostPointer = d >= 0 ? nullptr : const_cast<void*>(p);
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t bytes) {
  void* m = std::malloc(bytes ? bytes : 1);
  if (!m) return fail(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> l(g_mem_mutex);
  g_mem[reinterpret_cast<uintptr_t>(m)] = Allocation{bytes, tl_device, true};
  *p = m;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  {
    std::lock_guard<std::mutex> l(g_mem_mutex);
    auto it = g_mem.find(reinterpret_cast<uintptr_t>(p));
    if (it == g_mem.end() || !it->second.owned) return fail(cudaErrorInvalidValue);
    g_mem.erase(it);
  }
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return cudaFree(p); }
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind k, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, k);
}
cudaError_t cudaMemset(void* p, int v, size_t bytes) {
  if (bytes) std::memset(p, v, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t bytes, cudaStream_t) { return cudaMemset(p, v, bytes); }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = nullptr;
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = nullptr;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

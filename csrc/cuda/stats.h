// Counters of device traffic (rlnfast.device_stats): plain C++, so the bindings read them without CUDA headers.
#pragma once
#include <atomic>

namespace rlnfast {
namespace cuda {

enum class Counter : int { h2d = 0, d2h, alloc, sync, launch, N };
extern std::atomic<long long> g_counters[(int)Counter::N];
inline void count(Counter c) { g_counters[(int)c].fetch_add(1, std::memory_order_relaxed); }

}  // namespace cuda
}  // namespace rlnfast

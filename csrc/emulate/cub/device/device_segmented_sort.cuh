// cub::DeviceSegmentedSort::SortKeys for the emulated CUDA build: the same contract (a size query with
// d_temp_storage == nullptr, then the sort; keys of each segment [begin[i], end[i]) sorted ascending into
// d_keys_out) on the host, in CUB's radix order for floating point: -0.0 before +0.0, NaN (sign bit clear)
// after +inf, as the radix sort on the bit pattern orders them.
#pragma once
#include <cstring>
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include <cuda_runtime.h>

namespace cub {
namespace detail_emu {
template <class K>
inline auto radix_key(K k) {
  if constexpr (std::is_same<K, double>::value) {
    uint64_t u;
    std::memcpy(&u, &k, sizeof(u));
    return (u >> 63) ? ~u : (u | (uint64_t(1) << 63));
  } else if constexpr (std::is_same<K, float>::value) {
    uint32_t u;
    std::memcpy(&u, &k, sizeof(u));
    return (u >> 31) ? ~u : (u | (uint32_t(1) << 31));
  } else {
    return k;
  }
}
}  // namespace detail_emu

struct DeviceSegmentedSort {
  template <class KeyT, class NumItemsT, class NumSegmentsT, class BeginIt, class EndIt>
  static cudaError_t SortKeys(void* d_temp_storage, size_t& temp_storage_bytes, const KeyT* d_keys_in,
                              KeyT* d_keys_out, NumItemsT num_items, NumSegmentsT num_segments, BeginIt d_begin,
                              EndIt d_end, cudaStream_t = nullptr) {
    if (d_temp_storage == nullptr) {
      temp_storage_bytes = 1;
      return cudaSuccess;
    }
    if (num_items > 0) std::memmove(d_keys_out, d_keys_in, sizeof(KeyT) * (size_t)num_items);
    for (NumSegmentsT s = 0; s < num_segments; ++s) {
      const long long b = (long long)d_begin[s], e = (long long)d_end[s];
      if (b < 0 || e > (long long)num_items) return cudaErrorInvalidValue;
      if (e <= b) continue;
      std::sort(d_keys_out + b, d_keys_out + e,
                [](KeyT x, KeyT y) { return detail_emu::radix_key(x) < detail_emu::radix_key(y); });
    }
    return cudaSuccess;
  }
};

}  // namespace cub

// First-order features on the GPU: CUB segmented sort of the ragged batch, then one block per region.
#include <cub/device/device_segmented_sort.cuh>

#include <stdexcept>

#include "common/firstorder_kernel.cuh"
#include "common/ops.h"
#include "cuda/launch.h"
#include "cuda/runtime.cuh"

namespace rlnfast {
namespace cuda {

void firstorder(const FirstOrderArgs& a) {
  if (a.n_regions == 0) return;
  const DeviceGuard guard(a.values ? static_cast<const void*>(a.values) : static_cast<const void*>(a.offsets));
  cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
  // Offsets are checked on the device before anything reads through them; the flag comes back with the
  // value count in one copy and one synchronisation.
  DevBuf<long long> head(2, stream);   // [n_values read from offsets, bad flag]
  head.fill_bytes(0, 2);
  const long long nr = a.n_regions;
  const unsigned check_grid = (unsigned)std::min<long long>((nr + 1 + RLNFAST_FO_BLOCK - 1) / RLNFAST_FO_BLOCK, 1 << 16);
  RLNFAST_LAUNCH(rlnfast_firstorder_check_offsets, check_grid, RLNFAST_FO_BLOCK, 0, stream)(
      a.offsets, nr, (long long)a.n_values, reinterpret_cast<int*>(head.p + 1));
  RLNFAST_CUDA_CHECK_LAUNCH();
  long long h[2] = {0, 0};
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(head.p, a.offsets + a.n_regions, sizeof(long long), cudaMemcpyDeviceToDevice, stream));
  head.download(h, 2);
  sync(stream);
  if (h[1] != 0)
    throw std::invalid_argument("firstorder: offsets must be non-decreasing from 0 to len(values)=" +
                                std::to_string(a.n_values));
  const i64 n_values = h[0];
  DevBuf<double> sorted(n_values, stream);
  size_t temp_bytes = 0;
  RLNFAST_CUDA_CHECK(cub::DeviceSegmentedSort::SortKeys(nullptr, temp_bytes, a.values, sorted.p, n_values,
                                                        a.n_regions, a.offsets, a.offsets + 1, stream));
  DevBuf<char> temp(temp_bytes, stream);
  RLNFAST_CUDA_CHECK(cub::DeviceSegmentedSort::SortKeys(temp.p, temp_bytes, a.values, sorted.p, n_values,
                                                        a.n_regions, a.offsets, a.offsets + 1, stream));
  RLNFAST_LAUNCH(rlnfast_firstorder_regions, (unsigned)a.n_regions, RLNFAST_FO_BLOCK, 0, stream)(
      a.values, sorted.p, a.offsets, a.n_regions, a.bin_mode, a.bin_width, a.bin_count, a.edges_f32,
      a.voxel_array_shift, a.voxel_volume, a.out);
  RLNFAST_CUDA_CHECK_LAUNCH();
}

void segmented_sort(void* temp, size_t& temp_bytes, const double* in, double* out, i64 n_values, i64 n_segments,
                    const i64* offsets, void* stream) {
  RLNFAST_CUDA_CHECK(cub::DeviceSegmentedSort::SortKeys(temp, temp_bytes, in, out, n_values, n_segments, offsets,
                                                        offsets + 1, static_cast<cudaStream_t>(stream)));
}

void firstorder_sorted(const double* original, const double* sorted, const i64* offsets, i64 n_regions,
                       int bin_mode, double bin_width, int bin_count, int edges_f32, double shift,
                       double voxel_volume, double* out, void* stream) {
  if (n_regions == 0) return;
  RLNFAST_LAUNCH(rlnfast_firstorder_regions, (unsigned)n_regions, RLNFAST_FO_BLOCK, 0, static_cast<cudaStream_t>(stream))(
      original, sorted, offsets, n_regions, bin_mode, bin_width, bin_count, edges_f32, shift, voxel_volume, out);
  RLNFAST_CUDA_CHECK_LAUNCH();
}

void firstorder_host(const FirstOrderArgs& h) {
  if (h.n_regions == 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(h.stream);
  const i64 n_values = h.offsets[h.n_regions];
  DevBuf<double> values(n_values, stream), out(h.n_regions * fo::NFeatures, stream);
  DevBuf<i64> offsets(h.n_regions + 1, stream);
  values.upload(h.values, n_values);
  offsets.upload(h.offsets, h.n_regions + 1);
  FirstOrderArgs d = h;
  d.values = values.p;
  d.offsets = offsets.p;
  d.out = out.p;
  firstorder(d);
  out.download(h.out, h.n_regions * fo::NFeatures);
  sync(stream);
}

}  // namespace cuda
}  // namespace rlnfast

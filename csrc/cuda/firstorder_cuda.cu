// First-order features on the GPU: CUB segmented sort of the ragged batch, then one block per region.
#include <cub/device/device_segmented_sort.cuh>

#include "common/firstorder_kernel.cuh"
#include "common/ops.h"
#include "cuda/check.cuh"

namespace rlnfast {
namespace cuda {

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
  return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ")";
}

void firstorder(const FirstOrderArgs& a) {
  if (a.n_regions == 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
  i64 n_values = 0;
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(&n_values, a.offsets + a.n_regions, sizeof(i64), cudaMemcpyDeviceToHost, stream));
  RLNFAST_CUDA_CHECK(cudaStreamSynchronize(stream));
  double* sorted = nullptr;
  void* temp = nullptr;
  size_t temp_bytes = 0;
  RLNFAST_CUDA_CHECK(cudaMallocAsync(&sorted, sizeof(double) * (n_values > 0 ? n_values : 1), stream));
  RLNFAST_CUDA_CHECK(cub::DeviceSegmentedSort::SortKeys(nullptr, temp_bytes, a.values, sorted, n_values,
                                                        a.n_regions, a.offsets, a.offsets + 1, stream));
  RLNFAST_CUDA_CHECK(cudaMallocAsync(&temp, temp_bytes > 0 ? temp_bytes : 1, stream));
  RLNFAST_CUDA_CHECK(cub::DeviceSegmentedSort::SortKeys(temp, temp_bytes, a.values, sorted, n_values,
                                                        a.n_regions, a.offsets, a.offsets + 1, stream));
  rlnfast_firstorder_regions<<<(unsigned)a.n_regions, RLNFAST_FO_BLOCK, 0, stream>>>(
      a.values, sorted, a.offsets, a.n_regions, a.bin_mode, a.bin_width, a.bin_count, a.edges_f32, a.voxel_array_shift,
      a.voxel_volume, a.out);
  RLNFAST_CUDA_CHECK_LAUNCH();
  RLNFAST_CUDA_CHECK(cudaFreeAsync(temp, stream));
  RLNFAST_CUDA_CHECK(cudaFreeAsync(sorted, stream));
}

void firstorder_host(const FirstOrderArgs& h) {
  if (h.n_regions == 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(h.stream);
  const i64 n_values = h.offsets[h.n_regions];
  FirstOrderArgs d = h;
  double* values = nullptr;
  i64* offsets = nullptr;
  double* out = nullptr;
  RLNFAST_CUDA_CHECK(cudaMallocAsync(&values, sizeof(double) * (n_values > 0 ? n_values : 1), stream));
  RLNFAST_CUDA_CHECK(cudaMallocAsync(&offsets, sizeof(i64) * (h.n_regions + 1), stream));
  RLNFAST_CUDA_CHECK(cudaMallocAsync(&out, sizeof(double) * h.n_regions * fo::NFeatures, stream));
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(values, h.values, sizeof(double) * n_values, cudaMemcpyHostToDevice, stream));
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(offsets, h.offsets, sizeof(i64) * (h.n_regions + 1), cudaMemcpyHostToDevice, stream));
  d.values = values;
  d.offsets = offsets;
  d.out = out;
  firstorder(d);
  RLNFAST_CUDA_CHECK(cudaMemcpyAsync(h.out, out, sizeof(double) * h.n_regions * fo::NFeatures, cudaMemcpyDeviceToHost, stream));
  RLNFAST_CUDA_CHECK(cudaStreamSynchronize(stream));
  RLNFAST_CUDA_CHECK(cudaFree(values));
  RLNFAST_CUDA_CHECK(cudaFree(offsets));
  RLNFAST_CUDA_CHECK(cudaFree(out));
}

}  // namespace cuda
}  // namespace rlnfast

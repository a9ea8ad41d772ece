// Bindings of the firstorder op: cpu takes NumPy arrays; cuda takes device pointers (CuPy/DLPack) or NumPy.
#include "bindings/bind.h"
#include "common/firstorder_math.h"

namespace rlnfast {
namespace bind {

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<i64, py::array::c_style | py::array::forcecast>;

// The args of one call, validated (host or device pointers alike; out and stream are set by the caller).
static FirstOrderArgs make_args(const double* values, i64 n_values, const i64* offsets, i64 n_regions,
                                int bin_mode, double bin_width, int bin_count, bool edges_f32, double shift,
                                double voxel_volume) {
  FirstOrderArgs a;
  a.values = values;
  a.n_values = n_values;
  a.offsets = offsets;
  a.n_regions = n_regions;
  a.bin_mode = bin_mode;
  a.bin_width = bin_width;
  a.bin_count = bin_count;
  a.edges_f32 = edges_f32;
  a.voxel_array_shift = shift;
  a.voxel_volume = voxel_volume;
  a.out = nullptr;
  a.stream = nullptr;
  check(validate(a), "firstorder");
  return a;
}

// Host arrays -> args with a fresh output array: the Python entry point of one backend's host function
// (the cpu op and the cuda host twin share it; `run` is the backend call).
template <class Run>
static auto host_entry(Run run) {
  return [run](F64 values, I64 offsets, int bin_mode, double bin_width, int bin_count, bool edges_f32,
               double voxel_array_shift, double voxel_volume) {
    FirstOrderArgs a = make_args(values.data(), values.size(), offsets.data(), offsets.size() - 1, bin_mode,
                                 bin_width, bin_count, edges_f32, voxel_array_shift, voxel_volume);
    bool ok = a.n_regions < 0 || (offsets.data()[0] == 0 && offsets.data()[a.n_regions] == values.size());
    for (i64 r = 0; ok && r < a.n_regions; ++r) ok = offsets.data()[r] <= offsets.data()[r + 1];
    if (!ok) throw py::value_error("firstorder: offsets must be non-decreasing from 0 to len(values)");
    py::array_t<double> out({a.n_regions < 0 ? (i64)0 : a.n_regions, (i64)fo::NFeatures});
    a.out = out.mutable_data();
    {
      py::gil_scoped_release nogil;
      run(a);
    }
    return out;
  };
}

void bind_firstorder(py::module_& cpu_m, py::module_* cuda_m) {
  // The binning and feature parameters, in every entry point after the values and their offsets.
  const auto params = arg_list(py::arg("bin_mode"), py::arg("bin_width"), py::arg("bin_count"), py::arg("edges_f32"),
                               py::arg("voxel_array_shift"), py::arg("voxel_volume"));
  const auto host_args = arg_list(py::arg("values"), py::arg("offsets")) + params;
  host_args.def(cpu_m, "firstorder", host_entry([](const FirstOrderArgs& a) { cpu::firstorder(a); }),
                "First-order features [n_regions, 19] of a ragged batch (columns in rlnfast.ops.firstorder.FEATURES "
                "order)");
  cpu_m.attr("FIRSTORDER_NFEATURES") = (int)fo::NFeatures;

#ifdef RLNFAST_WITH_CUDA
  const auto device_args = arg_list(py::arg("values"), py::arg("n_values"), py::arg("offsets"), py::arg("n_regions")) +
                           params +
                           arg_list(py::arg("out"), py::arg("stream") = 0);
  device_args.def(
      *cuda_m, "firstorder",
      [](uintptr_t values, i64 n_values, uintptr_t offsets, i64 n_regions, int bin_mode, double bin_width,
         int bin_count, bool edges_f32, double voxel_array_shift, double voxel_volume, uintptr_t out,
         uintptr_t stream) {
        FirstOrderArgs a = make_args(reinterpret_cast<const double*>(values), n_values,
                                     reinterpret_cast<const i64*>(offsets), n_regions, bin_mode, bin_width, bin_count,
                                     edges_f32, voxel_array_shift, voxel_volume);
        a.out = reinterpret_cast<double*>(out);
        a.stream = reinterpret_cast<void*>(stream);
        py::gil_scoped_release nogil;
        cuda::firstorder(a);
      },
      "Device-pointer version: values (float64, n_values of them), offsets (int64, checked on the device), out "
      "(float64 [n_regions,19]) live on the GPU; runs on the device that owns values (the caller's is restored)");
  host_args.def(*cuda_m, "firstorder_host", host_entry([](const FirstOrderArgs& a) { cuda::firstorder_host(a); }),
                "Host-array version of firstorder on the GPU (copies in and out)");
#else
  (void)cuda_m;
#endif
}

}  // namespace bind
}  // namespace rlnfast

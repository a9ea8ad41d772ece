// Bindings of the node-size op: NumPy crops in, per-region Feret diameters out. CPU only: the GPU backends
// call cpu.size_feret on the host (rlnfast._backends.HOST_OPS says so).
#include "bindings/bind.h"
#include "common/size_ops.h"

namespace rlnfast {
namespace bind {

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<i64, py::array::c_style | py::array::forcecast>;
using U8 = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

// The args of one size_feret call, validated (outputs are set by the caller).
static SizeArgs make_size_args(const U8& mask, const I64& offsets, const I64& dims, const F64& spacing) {
  if (offsets.ndim() != 1 || offsets.size() < 1) throw py::value_error("size_feret: offsets must be 1-D with n_regions + 1 entries");
  const i64 n = offsets.size() - 1;
  if (dims.size() != 3 * n) throw py::value_error("size_feret: dims must have shape (n_regions, 3)");
  if (spacing.size() != 3) throw py::value_error("size_feret: spacing must have 3 entries (z, y, x mm)");
  if (offsets.data()[n] != mask.size()) throw py::value_error("size_feret: offsets must end at len(mask)");
  SizeArgs a;
  a.mask = mask.data();
  a.offsets = offsets.data();
  a.dims = dims.data();
  a.n_regions = n;
  a.spacing_y = spacing.data()[1];
  a.spacing_x = spacing.data()[2];
  a.short_axis = a.long_axis = nullptr;
  a.slices = a.short_slice = a.long_slice = nullptr;
  check(validate(a), "size_feret");
  return a;
}

// The Python entry point of a backend's size_feret (`run` is the backend call; host arrays in and out).
template <class Run>
static auto size_entry(Run run) {
  return [run](U8 mask, I64 offsets, I64 dims, F64 spacing) -> py::tuple {
    SizeArgs a = make_size_args(mask, offsets, dims, spacing);
    const i64 n = a.n_regions;
    py::array_t<double> s(n), l(n);
    py::array_t<i64> k(n), ss(n), ls(n);
    a.short_axis = s.mutable_data();
    a.long_axis = l.mutable_data();
    a.slices = k.mutable_data();
    a.short_slice = ss.mutable_data();
    a.long_slice = ls.mutable_data();
    {
      py::gil_scoped_release nogil;
      run(a);
    }
    return py::make_tuple(s, l, k, ss, ls);
  };
}

void bind_size(py::module_& cpu_m, py::module_* cuda_m) {
  (void)cuda_m;   // no CUDA kernel: the GPU backends run cpu.size_feret on the host
  const auto size_py_args = arg_list(py::arg("mask"), py::arg("offsets"), py::arg("dims"), py::arg("spacing"));
  size_py_args.def(cpu_m, "size_feret", size_entry([](const SizeArgs& a) { cpu::size_feret(a); }),
                   "(short_axis, long_axis, slices, short_slice, long_slice) per region: Feret diameters (mm) of the "
                   "axial slices of region crops (spacing z, y, x in mm); slice indices are crop z indices (-1: "
                   "empty region)");
}

}  // namespace bind
}  // namespace rlnfast

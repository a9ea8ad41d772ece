// Bindings of the node-size op: NumPy crops in, per-region Feret diameters out. CPU only (the GPU
// backends call this on the host; rlnfast.ops.size says so).
#include "bindings/bind.h"
#include "common/size_ops.h"

namespace rlnfast {
namespace bind {

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<i64, py::array::c_style | py::array::forcecast>;
using U8 = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

void bind_size(py::module_& cpu_m, py::module_* cuda_m) {
  (void)cuda_m;
  cpu_m.def(
      "size_feret",
      [](U8 mask, I64 offsets, I64 dims, F64 spacing) {
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
        check(validate(a), "size_feret");
        py::array_t<double> s(n), l(n);
        py::array_t<i64> k(n), ss(n), ls(n);
        a.short_axis = s.mutable_data();
        a.long_axis = l.mutable_data();
        a.slices = k.mutable_data();
        a.short_slice = ss.mutable_data();
        a.long_slice = ls.mutable_data();
        {
          py::gil_scoped_release nogil;
          cpu::size_feret(a);
        }
        return py::make_tuple(s, l, k, ss, ls);
      },
      py::arg("mask"), py::arg("offsets"), py::arg("dims"), py::arg("spacing"),
      "(short_axis, long_axis, slices, short_slice, long_slice) per region: Feret diameters (mm) of the axial "
      "slices of region crops (spacing z, y, x in mm); slice indices are crop z indices (-1: empty region)");
}

}  // namespace bind
}  // namespace rlnfast

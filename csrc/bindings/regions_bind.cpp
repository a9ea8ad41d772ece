// Bindings of the region ops (region_stats, gather): NumPy in, NumPy out, GIL released around the loops.
#include "bindings/bind.h"

namespace rlnfast {
namespace bind {

void bind_regions(py::module_& cpu_m, py::module_* /*cuda*/) {
  cpu_m.def(
      "region_stats",
      [](py::array labels, i64 max_label) {
        RegionStatsArgs a;
        a.labels = volume_view(labels, "label map");
        a.max_label = max_label;
        check(validate(a), "region_stats");
        py::array_t<i64> counts(max_label + 1);
        py::array_t<i64> bbox({max_label + 1, (i64)6});
        a.counts = counts.mutable_data();
        a.bbox = bbox.mutable_data();
        {
          py::gil_scoped_release nogil;
          cpu::region_stats(a);
        }
        return py::make_tuple(counts, bbox);
      },
      py::arg("labels"), py::arg("max_label"),
      "Voxel count and inclusive bounding box (z0,y0,x0,z1,y1,x1) of every label 0..max_label in one pass");

  cpu_m.def(
      "gather",
      [](py::array image, py::array labels, py::array_t<int32_t, py::array::c_style | py::array::forcecast> region_of,
         py::array_t<i64, py::array::c_style | py::array::forcecast> offsets) {
        GatherArgs a;
        a.image = volume_view(image, "image");
        a.labels = volume_view(labels, "label map");
        a.region_of = region_of.data();
        a.max_label = region_of.size() - 1;
        a.offsets = offsets.data();
        a.n_regions = offsets.size() - 1;
        check(validate(a), "gather");
        py::array_t<double> values(a.n_regions >= 0 ? offsets.data()[a.n_regions] : 0);
        py::array_t<i64> bad(a.n_regions);
        a.values = values.mutable_data();
        a.first_nonfinite = bad.mutable_data();
        {
          py::gil_scoped_release nogil;
          cpu::gather(a);
        }
        return py::make_tuple(values, bad);
      },
      py::arg("image"), py::arg("labels"), py::arg("region_of"), py::arg("offsets"),
      "Ragged float64 values of the selected regions (C order within each) and the first non-finite voxel per region");
}

}  // namespace bind
}  // namespace rlnfast

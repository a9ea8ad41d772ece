// Bindings of the region ops (region_stats, gather): NumPy in, NumPy out, GIL released around the loops.
#include <pybind11/stl.h>

#include <optional>

#include "bindings/bind.h"

namespace rlnfast {
namespace bind {

using I32 = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<i64, py::array::c_style | py::array::forcecast>;

// The args of one region_stats call, validated (the one place a backend entry point builds them).
static RegionStatsArgs make_region_stats_args(const py::array& labels, i64 cap) {
  RegionStatsArgs a;
  a.labels = volume_view(labels, "label map");
  a.max_label = cap;
  check(validate(a), "region_stats");
  return a;
}

// The args of one gather call, validated (outputs are set by the caller).
static GatherArgs make_gather_args(const py::array& image, const py::array& labels, const I32& region_of,
                                   const I64& offsets, const I64& region_labels, const std::optional<I64>& bbox) {
  GatherArgs a;
  a.image = volume_view(image, "image");
  a.labels = volume_view(labels, "label map");
  a.region_of = region_of.data();
  a.max_label = region_of.size() - 1;
  a.offsets = offsets.data();
  a.n_regions = offsets.size() - 1;
  a.labels_of_region = region_labels.data();
  a.bbox = bbox ? bbox->data() : nullptr;
  a.values = nullptr;
  a.first_nonfinite = nullptr;
  // sizes first: validate() reads every region's label and box
  if (a.n_regions < 0 || region_labels.size() != a.n_regions || (bbox && bbox->size() != 6 * a.n_regions))
    throw py::value_error("gather: offsets must have n + 1 entries, region_labels n and bbox n x 6");
  check(validate(a), "gather");
  return a;
}

void bind_regions(py::module_& cpu_m, py::module_* /*cuda*/) {
  cpu_m.def(
      "region_stats",
      [](py::array labels, i64 cap) {
        // One pass; per-thread tables (dense below RegionTable::kDense, sparse above) folded into one, then
        // written out compactly: memory follows the labels present, not the largest label value.
        RegionStatsArgs a = make_region_stats_args(labels, cap);
        std::vector<cpu::RegionTable> tables;
        {
          py::gil_scoped_release nogil;
          cpu::region_stats_tables(a.labels, cap, tables);
        }
        const cpu::RegionTable& t = tables[0];
        const i64 n = cpu::compact_table(t, nullptr, nullptr, nullptr);
        py::array_t<i64> out_labels(n);
        py::array_t<i64> counts(n);
        py::array_t<i64> bbox({n, (i64)6});
        cpu::compact_table(t, out_labels.mutable_data(), counts.mutable_data(), bbox.mutable_data());
        return py::make_tuple(out_labels, counts, bbox, t.above_cap);
      },
      py::arg("labels"), py::arg("cap"),
      "(labels, counts, bbox, n_above_cap): every positive label present (<= cap), ascending, with its voxel "
      "count and inclusive bounding box (z0,y0,x0,z1,y1,x1), in one pass; voxels with labels above cap are "
      "only counted");

  cpu_m.def(
      "gather",
      [](py::array image, py::array labels, I32 region_of, I64 offsets, I64 region_labels, std::optional<I64> bbox) {
        GatherArgs a = make_gather_args(image, labels, region_of, offsets, region_labels, bbox);
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
      py::arg("image"), py::arg("labels"), py::arg("region_of"), py::arg("offsets"), py::arg("region_labels"),
      py::arg("bbox") = py::none(),
      "Ragged float64 values of the selected regions (C order within each) and the first non-finite voxel per region");
}

}  // namespace bind
}  // namespace rlnfast

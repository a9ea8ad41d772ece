// Bindings of the fractal ops: NumPy crops and (region, size) pairs in, per-pair integer counts out.
#include "bindings/bind.h"
#include "common/fractal_math.h"

namespace rlnfast {
namespace bind {

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<i64, py::array::c_style | py::array::forcecast>;
using U8 = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

static FractalCrops crops_of(const U8& mask, const I64& offsets, const I64& dims, const I64& spacing) {
  if (offsets.ndim() != 1 || offsets.size() < 1) throw py::value_error("fractal: offsets must be 1-D with n_regions + 1 entries");
  const i64 n = offsets.size() - 1;
  if (dims.size() != 3 * n) throw py::value_error("fractal: dims must have shape (n_regions, 3)");
  if (spacing.size() != 3) throw py::value_error("fractal: spacing must have 3 entries (z, y, x units)");
  if (offsets.data()[0] != 0 || offsets.data()[n] != mask.size())
    throw py::value_error("fractal: offsets must start at 0 and end at len(mask)");
  FractalCrops c;
  c.mask = mask.data();
  c.offsets = offsets.data();
  c.dims = dims.data();
  c.n_regions = n;
  for (int a = 0; a < 3; ++a) c.spacing[a] = spacing.data()[a];
  return c;
}

// The args of one fractal_boxes call, validated (outputs and stream are set by the caller).
static FractalBoxArgs make_box_args(const U8& mask, const I64& offsets, const I64& dims, const I64& spacing,
                               const I64& pair_region, const I64& pair_size) {
  FractalBoxArgs a;
  a.crops = crops_of(mask, offsets, dims, spacing);
  if (pair_region.size() != pair_size.size()) throw py::value_error("fractal_boxes: pair_region and pair_size differ in length");
  a.pair_region = pair_region.data();
  a.pair_size = pair_size.data();
  a.n_pairs = pair_region.size();
  a.n_mask = a.n_surface = a.sum_m2 = a.n_grid = nullptr;
  a.stream = nullptr;
  check(validate(a), "fractal_boxes");
  return a;
}

// The args of one fractal_dbc call, validated (outputs and stream are set by the caller).
static FractalDbcArgs make_dbc_args(const U8& mask, const F64& values, const I64& offsets, const I64& dims,
                               const I64& spacing, const I64& pair_region, const I64& pair_size, int grey_levels) {
  FractalDbcArgs a;
  a.crops = crops_of(mask, offsets, dims, spacing);
  if (values.size() != mask.size()) throw py::value_error("fractal_dbc: values and mask differ in length");
  if (pair_region.size() != pair_size.size()) throw py::value_error("fractal_dbc: pair_region and pair_size differ in length");
  a.values = values.data();
  a.pair_region = pair_region.data();
  a.pair_size = pair_size.data();
  a.n_pairs = pair_region.size();
  a.grey_levels = grey_levels;
  a.n_dbc = nullptr;
  a.vmin = a.vmax = nullptr;
  a.stream = nullptr;
  check(validate(a), "fractal_dbc");
  return a;
}

// The Python entry point of a backend's fractal_boxes (`run` is the backend call; host arrays in and out).
template <class Run>
static auto boxes_entry(Run run) {
  return [run](U8 mask, I64 offsets, I64 dims, I64 spacing, I64 pair_region, I64 pair_size) -> py::tuple {
    FractalBoxArgs a = make_box_args(mask, offsets, dims, spacing, pair_region, pair_size);
    py::array_t<i64> n_mask(a.n_pairs), n_surface(a.n_pairs), sum_m2(a.n_pairs), n_grid(a.n_pairs);
    a.n_mask = n_mask.mutable_data();
    a.n_surface = n_surface.mutable_data();
    a.sum_m2 = sum_m2.mutable_data();
    a.n_grid = n_grid.mutable_data();
    {
      py::gil_scoped_release nogil;
      run(a);
    }
    return py::make_tuple(n_mask, n_surface, sum_m2, n_grid);
  };
}

// The Python entry point of a backend's fractal_dbc (`run` is the backend call; host arrays in and out).
template <class Run>
static auto dbc_entry(Run run) {
  return [run](U8 mask, F64 values, I64 offsets, I64 dims, I64 spacing, I64 pair_region, I64 pair_size,
               int grey_levels) -> py::tuple {
    FractalDbcArgs a = make_dbc_args(mask, values, offsets, dims, spacing, pair_region, pair_size, grey_levels);
    py::array_t<i64> n_dbc(a.n_pairs);
    py::array_t<double> vmin(a.crops.n_regions), vmax(a.crops.n_regions);
    a.n_dbc = n_dbc.mutable_data();
    a.vmin = vmin.mutable_data();
    a.vmax = vmax.mutable_data();
    {
      py::gil_scoped_release nogil;
      run(a);
    }
    return py::make_tuple(n_dbc, vmin, vmax);
  };
}

void bind_fractal(py::module_& cpu_m, py::module_* cuda_m) {
  const auto boxes_py_args = arg_list(py::arg("mask"), py::arg("offsets"), py::arg("dims"), py::arg("spacing"),
                                   py::arg("pair_region"), py::arg("pair_size"));
  const auto dbc_py_args = arg_list(py::arg("mask"), py::arg("values"), py::arg("offsets"), py::arg("dims"),
                                  py::arg("spacing"), py::arg("pair_region"), py::arg("pair_size"),
                                  py::arg("grey_levels"));

  cpu_m.attr("FRACTAL_UNITS_PER_MM") = (i64)RLNFAST_FR_UNITS_PER_MM;
  cpu_m.def(
      "fractal_crops",
      [](py::array labels, I64 label, I64 bbox) {
        VolumeView v = volume_view(labels, "label map");
        const i64 n = label.size();
        if (bbox.size() != 6 * n) throw py::value_error("fractal_crops: bbox must have shape (n_regions, 6)");
        py::array_t<i64> offsets(n + 1), dims({n, (i64)3});
        i64* o = offsets.mutable_data();
        i64* d = dims.mutable_data();
        o[0] = 0;
        for (i64 r = 0; r < n; ++r) {
          const i64* b = bbox.data() + 6 * r;
          for (int a = 0; a < 3; ++a) d[3 * r + a] = b[0] > b[3] ? 0 : b[a + 3] - b[a] + 1;
          o[r + 1] = o[r] + d[3 * r] * d[3 * r + 1] * d[3 * r + 2];
        }
        FractalCropArgs a;
        a.labels = &v;
        a.label = label.data();
        a.bbox = bbox.data();
        a.n_regions = n;
        a.offsets = o;
        check(validate(a), "fractal_crops");
        py::array_t<uint8_t> mask(o[n]);
        py::array_t<i64> count(n);
        a.mask = mask.mutable_data();
        a.count = count.mutable_data();
        {
          py::gil_scoped_release nogil;
          cpu::fractal_crops(a);
        }
        return py::make_tuple(mask, offsets, dims, count);
      },
      py::arg("labels"), py::arg("label"), py::arg("bbox"),
      "(mask uint8, offsets, dims [n,3], count): every region's bounding-box crop of (labels == label), one ragged batch");
  boxes_py_args.def(cpu_m, "fractal_boxes", boxes_entry([](const FractalBoxArgs& a) { cpu::fractal_boxes(a); }),
                 "(n_mask, n_surface, sum_m2, n_grid) per (region, box size) pair; spacing and sizes in 1e-6 mm units");
  dbc_py_args.def(cpu_m, "fractal_dbc", dbc_entry([](const FractalDbcArgs& a) { cpu::fractal_dbc(a); }),
                "(n_dbc per pair, vmin, vmax per region): differential box counts of intensity crops");
#ifdef RLNFAST_WITH_CUDA
  boxes_py_args.def(*cuda_m, "fractal_boxes", boxes_entry([](const FractalBoxArgs& a) { cuda::fractal_boxes_host(a); }),
                 "GPU version of cpu.fractal_boxes (host arrays in and out)");
  dbc_py_args.def(*cuda_m, "fractal_dbc", dbc_entry([](const FractalDbcArgs& a) { cuda::fractal_dbc_host(a); }),
                "GPU version of cpu.fractal_dbc (host arrays in and out)");
#else
  (void)cuda_m;
#endif
}

}  // namespace bind
}  // namespace rlnfast

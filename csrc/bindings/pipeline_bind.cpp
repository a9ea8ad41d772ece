// Binding of the device-resident pipeline (csrc/cuda/pipeline.h): rlnfast._core.cuda.Pipeline, used by
// rlnfast._device_pipeline. Host NumPy arrays in and out; the GIL is released while the device works.
#include <pybind11/stl.h>

#include "bindings/bind.h"

#ifdef RLNFAST_WITH_CUDA
#include "common/firstorder_math.h"
#include "cuda/pipeline.h"
#endif

namespace rlnfast {
namespace bind {

#ifdef RLNFAST_WITH_CUDA
using I64 = py::array_t<i64, py::array::c_style | py::array::forcecast>;

static std::vector<i64> to_vec(const py::handle& h) {
  if (h.is_none()) return {};
  I64 a = py::cast<I64>(h);
  return std::vector<i64>(a.data(), a.data() + a.size());
}

template <class T>
static py::array_t<T> to_array(const std::vector<T>& v) {
  py::array_t<T> a((py::ssize_t)v.size());
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), sizeof(T) * v.size());
  return a;
}
#endif

void bind_pipeline(py::module_* cuda) {
#ifdef RLNFAST_WITH_CUDA
  if (!cuda) return;
  using cuda::Pipeline;
  py::class_<Pipeline>(*cuda, "Pipeline",
                       "Device-resident extraction of one case at a time on the current device: load() uploads the CT "
                       "and the label map and returns per-label stats; run() computes everything else on the device. "
                       "Scratch is pooled in the object (grow-only) and freed with it.")
      .def(py::init<>())
      .def_property_readonly("device", &Pipeline::device)
      .def(
          "load",
          [](Pipeline& p, const py::array& ct, const py::array& labels, i64 max_label) {
            const VolumeView c = volume_view(ct, "image"), l = volume_view(labels, "label map");
            py::array_t<i64> stats((py::ssize_t)(8 * (max_label + 1)));
            i64* out = stats.mutable_data();
            {
              py::gil_scoped_release nogil;
              p.load(c, l, max_label, out);
            }
            return stats;
          },
          py::arg("ct"), py::arg("labels"), py::arg("max_label"),
          "Upload the CT (any dtype) and the label map (uint8, uint16 or int32); returns int64 [8 L], L = max_label + 1: "
          "voxel counts [L], finite CT voxel counts [L], bounding-box minima [L, 3] and maxima [L, 3] (z, y, x) per "
          "label value (a label without voxels: count 0, box unspecified)")
      .def(
          "run",
          [](Pipeline& p, const I64& label, const I64& count, const I64& bbox, std::vector<double> spacing_mm,
             std::vector<i64> spacing_units, const py::list& types, const py::object& box_region,
             const py::object& box_size) {
            cuda::PipelineRun r;
            r.n = label.size();
            if (count.size() != r.n || bbox.size() != 6 * r.n)
              throw py::value_error("pipeline.run: label, count and bbox [n, 6] disagree in length");
            if (spacing_mm.size() != 3 || spacing_units.size() != 3)
              throw py::value_error("pipeline.run: spacing_mm and spacing_units need 3 values (z, y, x)");
            r.label = label.data();
            r.count = count.data();
            r.bbox = bbox.data();
            for (int a = 0; a < 3; ++a) {
              r.spacing_mm[a] = spacing_mm[a];
              r.spacing_units[a] = spacing_units[a];
            }
            for (const py::handle& h : types) {
              const py::dict d = py::cast<py::dict>(h);
              cuda::PipelineImageType t;
              t.kind = d["kind"].cast<int>();
              if (t.kind < 0 || t.kind > 2) throw py::value_error("pipeline.run: kind must be 0, 1 or 2");
              t.e.clip_lo = d["clip_lo"].cast<double>();
              t.e.clip_hi = d["clip_hi"].cast<double>();
              t.e.rho_w = d["rho_w"].cast<double>();
              t.e.gamma = d["gamma"].cast<double>();
              t.sigma = d["sigma"].cast<double>();
              t.firstorder = d["firstorder"].cast<bool>();
              t.bin_mode = d["bin_mode"].cast<int>();
              t.bin_width = d["bin_width"].cast<double>();
              t.bin_count = d["bin_count"].cast<int>();
              t.edges_f32 = d["edges_f32"].cast<bool>();
              t.shift = d["shift"].cast<double>();
              t.dbc = d["dbc"].cast<bool>();
              if (t.dbc) {
                t.dbc_region = to_vec(d["dbc_region"]);
                t.dbc_size = to_vec(d["dbc_size"]);
                t.grey_levels = d["grey_levels"].cast<int>();
              }
              r.types.push_back(std::move(t));
            }
            r.box_region = to_vec(box_region);
            r.box_size = to_vec(box_size);
            cuda::PipelineResult res;
            {
              py::gil_scoped_release nogil;
              p.run(r, res);
            }
            py::dict out;
            py::list fo, dbc;
            for (size_t t = 0; t < r.types.size(); ++t) {
              if (r.types[t].firstorder) {
                py::array_t<double> a = to_array(res.firstorder[t]);
                fo.append(a.reshape({(py::ssize_t)r.n, (py::ssize_t)fo::NFeatures}));
              } else {
                fo.append(py::none());
              }
              if (r.types[t].dbc)
                dbc.append(py::make_tuple(to_array(res.n_dbc[t]), to_array(res.vmin[t]), to_array(res.vmax[t])));
              else
                dbc.append(py::none());
            }
            out["firstorder"] = fo;
            out["dbc"] = dbc;
            out["dem_first_nan"] = to_array(res.dem_first_nan);
            out["boxes"] = r.box_region.empty()
                               ? py::object(py::none())
                               : py::object(py::make_tuple(to_array(res.n_mask), to_array(res.n_surface),
                                                           to_array(res.sum_m2), to_array(res.n_grid)));
            return out;
          },
          py::arg("label"), py::arg("count"), py::arg("bbox"), py::arg("spacing_mm"), py::arg("spacing_units"),
          py::arg("types"), py::arg("box_region") = py::none(), py::arg("box_size") = py::none(),
          "Everything of the loaded case on the device; returns {'firstorder': [per type [n, NF] or None], 'dbc': "
          "[per type (n_dbc, vmin, vmax) or None], 'dem_first_nan': [n], 'boxes': (n_mask, n_surface, sum_m2, n_grid) "
          "or None}");
#else
  (void)cuda;
#endif
}

}  // namespace bind
}  // namespace rlnfast

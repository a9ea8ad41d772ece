// Bindings of the elasticity and DEM ops: cpu takes NumPy arrays; cuda takes device pointers or NumPy.
#include <pybind11/stl.h>

#include <vector>

#include "bindings/bind.h"

namespace rlnfast {
namespace bind {

using I64 = py::array_t<i64, py::array::c_style | py::array::forcecast>;

static dem::ElasticityParams eparams(double clip_lo, double clip_hi, double rho_w, double gamma) {
  dem::ElasticityParams p;
  p.clip_lo = clip_lo;
  p.clip_hi = clip_hi;
  p.rho_w = rho_w;
  p.gamma = gamma;
  return p;
}

// out_offsets of a [n, 6] box array (sizes of malformed boxes are 0: validate() then names the box).
static std::vector<i64> box_offsets(const I64& boxes) {
  if (boxes.ndim() != 2 || boxes.shape(1) != 6) throw py::value_error("dem: boxes must be an int array [n, 6]");
  const i64 n = boxes.shape(0);
  std::vector<i64> off(n + 1, 0);
  auto b = boxes.unchecked<2>();
  for (i64 i = 0; i < n; ++i) {
    i64 s = 1;
    for (int ax = 0; ax < 3; ++ax) {
      const i64 len = b(i, ax + 3) - b(i, ax) + 1;
      s *= len > 0 ? len : 0;
    }
    off[i + 1] = off[i] + s;
  }
  return off;
}

static py::array_t<i64> to_array(const std::vector<i64>& v) {
  py::array_t<i64> r(v.size());
  std::copy(v.begin(), v.end(), r.mutable_data());
  return r;
}

// The args of one dem call with the host arrays they point into (box offsets, first_nan), built and validated
// in one place for the host and the device entry points; out and stream are set by the caller.
struct DemCall {
  std::vector<i64> off, first_nan;
  DemArgs a;
  DemCall(const VolumeView& v, const std::vector<double>& spacing_zyx, double sigma,
          const dem::ElasticityParams& params, const I64& boxes, bool out_f32)
      : off(box_offsets(boxes)) {
    if (spacing_zyx.size() != 3) throw py::value_error("dem: spacing must have 3 values (z, y, x)");
    a.ct = v;
    for (int i = 0; i < 3; ++i) a.spacing[i] = spacing_zyx[i];
    a.sigma = sigma;
    a.params = params;
    a.boxes = boxes.data();
    a.n_boxes = boxes.shape(0);
    a.out_offsets = off.data();
    a.out = nullptr;
    a.out_f32 = out_f32;
    first_nan.assign(a.n_boxes, -1);
    a.first_nan = first_nan.data();
    a.stream = nullptr;
    check(validate(a), "dem");
  }
  DemCall(const DemCall&) = delete;   // a points into off and first_nan
  DemCall& operator=(const DemCall&) = delete;
};

// The Python entry point of a backend's host dem (cpu.dem, cuda.dem_host): (values, offsets, first_nan).
template <class Run>
static auto dem_host_entry(Run run) {
  return [run](py::array ct, std::vector<double> spacing_zyx, double sigma, double clip_lo, double clip_hi,
               double rho_w, double gamma, I64 boxes, bool out_f32) -> py::tuple {
    VolumeView v = volume_view(ct, "CT");
    DemCall c(v, spacing_zyx, sigma, eparams(clip_lo, clip_hi, rho_w, gamma), boxes, out_f32);
    const i64 total = c.off.back();
    py::array out = out_f32 ? py::array(py::array_t<float>(total)) : py::array(py::array_t<double>(total));
    c.a.out = out.mutable_data();
    {
      py::gil_scoped_release nogil;
      run(c.a);
    }
    return py::make_tuple(out, to_array(c.off), to_array(c.first_nan));
  };
}

// The Python entry point of a backend's host elasticity (cpu.elasticity, cuda.elasticity_host): (E, first_nan).
template <class Run>
static auto elasticity_host_entry(Run run) {
  return [run](py::array ct, double clip_lo, double clip_hi, double rho_w, double gamma, bool out_f32) -> py::tuple {
    ElasticityArgs a;
    a.ct = volume_view(ct, "CT");
    a.params = eparams(clip_lo, clip_hi, rho_w, gamma);
    a.out_f32 = out_f32;
    a.stream = nullptr;
    i64 first_nan = -1;
    a.first_nan = &first_nan;
    check(validate(a), "elasticity");
    std::vector<py::ssize_t> shape = {(py::ssize_t)a.ct.nz, (py::ssize_t)a.ct.ny, (py::ssize_t)a.ct.nx};
    py::array out = out_f32 ? py::array(py::array_t<float>(shape)) : py::array(py::array_t<double>(shape));
    a.out = out.mutable_data();
    {
      py::gil_scoped_release nogil;
      run(a);
    }
    return py::make_tuple(out, first_nan);
  };
}

static const char* DEM_DOC =
    "DEM on boxes of a CT: (values, offsets, first_nan). ct: C-contiguous (z, y, x) HU; spacing (z, y, x) mm; "
    "boxes int64 [n, 6] (z0, y0, x0, z1, y1, x1 inclusive); box b's map in C order is "
    "values[offsets[b]:offsets[b+1]]; first_nan[b] is the flat CT index of the first NaN the box read, or -1.";
static const char* E_DOC =
    "Elasticity E of every voxel: (E, first_nan); first_nan is the flat index of the first NaN voxel, or -1.";

void bind_dem(py::module_& cpu_m, py::module_* cuda_m) {
  // Argument lists, each written once: the elasticity parameters, then what every dem entry point takes
  // between the CT and the output options.
  const auto e_params = arg_list(py::arg("clip_lo"), py::arg("clip_hi"), py::arg("rho_w"), py::arg("gamma"));
  const auto dem_params = arg_list(py::arg("spacing_zyx"), py::arg("sigma")) + e_params + arg_list(py::arg("boxes"));
  const auto dem_host_args = arg_list(py::arg("ct")) + dem_params + arg_list(py::arg("out_f32") = false);
  const auto e_host_args = arg_list(py::arg("ct")) + e_params + arg_list(py::arg("out_f32") = false);

  dem_host_args.def(cpu_m, "dem", dem_host_entry([](const DemArgs& a) { cpu::dem(a); }), DEM_DOC);
  e_host_args.def(cpu_m, "elasticity", elasticity_host_entry([](const ElasticityArgs& a) { cpu::elasticity(a); }),
                  E_DOC);
  cpu_m.def(
      "dem_radius",
      [](std::vector<double> spacing_zyx, double sigma) {
        if (spacing_zyx.size() != 3) throw py::value_error("dem_radius: spacing must have 3 values");
        return py::make_tuple(dem::gaussian_radius(sigma / spacing_zyx[0]), dem::gaussian_radius(sigma / spacing_zyx[1]),
                              dem::gaussian_radius(sigma / spacing_zyx[2]));
      },
      py::arg("spacing_zyx"), py::arg("sigma"), "Filter radius per axis (z, y, x) in voxels: int(4 sigma/spacing + 0.5)");

#ifdef RLNFAST_WITH_CUDA
  dem_host_args.def(*cuda_m, "dem_host", dem_host_entry([](const DemArgs& a) { cuda::dem_host(a); }),
                    "Host-array version of dem on the GPU (float32 kernels; copies in and out)");
  const auto dem_device_args = arg_list(py::arg("ct"), py::arg("dtype"), py::arg("nz"), py::arg("ny"), py::arg("nx")) +
                               dem_params + arg_list(py::arg("out_f32"), py::arg("out"), py::arg("stream") = 0);
  dem_device_args.def(
      *cuda_m, "dem",
      [](uintptr_t ct, py::dtype dt, i64 nz, i64 ny, i64 nx, std::vector<double> spacing_zyx, double sigma,
         double clip_lo, double clip_hi, double rho_w, double gamma, I64 boxes, bool out_f32, uintptr_t out,
         uintptr_t stream) {
        VolumeView v;
        v.data = reinterpret_cast<const void*>(ct);
        v.dtype = dtype_of(py::array(dt, std::vector<py::ssize_t>{0}), "CT");
        v.nz = nz;
        v.ny = ny;
        v.nx = nx;
        DemCall c(v, spacing_zyx, sigma, eparams(clip_lo, clip_hi, rho_w, gamma), boxes, out_f32);
        c.a.out = reinterpret_cast<void*>(out);
        c.a.stream = reinterpret_cast<void*>(stream);
        {
          py::gil_scoped_release nogil;
          cuda::dem(c.a);
        }
        return to_array(c.first_nan);
      },
      "Device-pointer version: ct and out (sum of box sizes, float32 or float64) live on the GPU; returns first_nan");
  e_host_args.def(*cuda_m, "elasticity_host",
                  elasticity_host_entry([](const ElasticityArgs& a) { cuda::elasticity_host(a); }),
                  "Host-array version of elasticity on the GPU");
#else
  (void)cuda_m;
#endif
}

}  // namespace bind
}  // namespace rlnfast

// Shared pieces of the pybind11 layer: NumPy -> view conversion and the per-op registration hooks.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "common/ops.h"

namespace py = pybind11;

namespace rlnfast {
namespace bind {

DType dtype_of(const py::array& a, const char* what);
// A C-contiguous 3-D array as a view (raises ValueError naming `what` otherwise).
VolumeView volume_view(const py::array& a, const char* what);
// Raise ValueError with msg when non-empty (validate() results).
inline void check(const std::string& msg, const char* op) {
  if (!msg.empty()) throw py::value_error(std::string(op) + ": " + msg);
}

// One registration function per op file; cuda is nullptr when the CUDA kernels were not compiled.
void bind_regions(py::module_& cpu, py::module_* cuda);
void bind_firstorder(py::module_& cpu, py::module_* cuda);
void bind_dem(py::module_& cpu, py::module_* cuda);
void bind_fractal(py::module_& cpu, py::module_* cuda);
void bind_size(py::module_& cpu, py::module_* cuda);

}  // namespace bind
}  // namespace rlnfast

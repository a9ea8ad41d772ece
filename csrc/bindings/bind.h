// Shared pieces of the pybind11 layer: NumPy -> view conversion and the per-op registration hooks.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

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

// A py::arg list written once and shared by every def() that takes those arguments (a cpu entry point and
// its cuda twin, a host and a device-pointer version); `+` concatenates lists, so a common run of arguments
// is also written once. Usage: ARGS.def(module, "name", callable, "doc").
template <class... A>
struct ArgList {
  std::tuple<A...> args;
  template <class F>
  void def(py::module_& m, const char* name, F&& f, const char* doc) const {
    std::apply([&](const A&... a) { m.def(name, std::forward<F>(f), a..., doc); }, args);
  }
};
template <class... A>
ArgList<A...> arg_list(A... a) {
  return {std::tuple<A...>(std::move(a)...)};
}
template <class... A, class... B>
ArgList<A..., B...> operator+(const ArgList<A...>& x, const ArgList<B...>& y) {
  return {std::tuple_cat(x.args, y.args)};
}

// One registration function per op file; cuda is nullptr when the CUDA kernels were not compiled.
void bind_regions(py::module_& cpu, py::module_* cuda);
void bind_firstorder(py::module_& cpu, py::module_* cuda);
void bind_dem(py::module_& cpu, py::module_* cuda);
void bind_fractal(py::module_& cpu, py::module_* cuda);
void bind_size(py::module_& cpu, py::module_* cuda);
void bind_pipeline(py::module_* cuda);

}  // namespace bind
}  // namespace rlnfast

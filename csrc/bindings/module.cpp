// The pybind11 module rlnfast._core: submodules cpu (always) and cuda (when compiled), and build_info().
#include "bindings/bind.h"
#include "rlnfast_config.h"

#ifdef RLNFAST_WITH_CUDA
#include "cuda/stats.h"
#endif
#ifdef RLNFAST_CUDA_EMULATED
#define RLNFAST_EMULATED true
// Test hooks of the emulated runtime (csrc/emulate/cuda_runtime.cpp), declared here so the bindings need
// none of its CUDA-keyword macros.
namespace rlnfast_emu {
void register_device_memory(const void* p, size_t bytes, int device);
void unregister_device_memory(const void* p);
void set_device_count(int n);
int last_launch_device();
long long live_allocations();
int current_device();
}  // namespace rlnfast_emu
#else
#define RLNFAST_EMULATED false
#endif

#ifdef RLNFAST_WITH_CUDA
#define RLNFAST_HAS_CUDA true
#else
#define RLNFAST_HAS_CUDA false
#endif

namespace rlnfast {
namespace bind {

DType dtype_of(const py::array& a, const char* what) {
  auto d = a.dtype();
  const char k = d.kind();
  const auto sz = d.itemsize();
  if (k == 'u' && sz == 1) return DType::u8;
  if (k == 'i' && sz == 1) return DType::i8;
  if (k == 'b') return DType::u8;
  if (k == 'u' && sz == 2) return DType::u16;
  if (k == 'i' && sz == 2) return DType::i16;
  if (k == 'u' && sz == 4) return DType::u32;
  if (k == 'i' && sz == 4) return DType::i32;
  if (k == 'i' && sz == 8) return DType::i64;
  if (k == 'f' && sz == 4) return DType::f32;
  if (k == 'f' && sz == 8) return DType::f64;
  throw py::value_error(std::string(what) + ": unsupported dtype " + std::string(py::str(d)) +
                        " (expected uint8/16/32, int8/16/32/64, float32 or float64)");
}

VolumeView volume_view(const py::array& a, const char* what) {
  if (a.ndim() != 3) throw py::value_error(std::string(what) + ": expected a 3-D array, got " + std::to_string(a.ndim()) + "-D");
  if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(what) + ": expected a C-contiguous array");
  VolumeView v;
  v.data = a.data();
  v.dtype = dtype_of(a, what);
  v.nz = a.shape(0);
  v.ny = a.shape(1);
  v.nx = a.shape(2);
  return v;
}

}  // namespace bind
}  // namespace rlnfast

PYBIND11_MODULE(_core, m) {
  using namespace rlnfast;
  m.doc() = "rlnfast compiled core: C++ CPU kernels (submodule cpu) and CUDA kernels (submodule cuda, when built)";
  py::module_ cpu = m.def_submodule("cpu", "C++ CPU kernels (OpenMP)");
  py::module_* cuda_ptr = nullptr;
#ifdef RLNFAST_WITH_CUDA
  // Not static: a static py::object would be released after the interpreter is gone (segfault at exit).
  py::module_ cuda_mod = m.def_submodule("cuda", "CUDA kernels; pointers are device pointers");
  cuda_ptr = &cuda_mod;
  cuda_mod.def("device_summary", &cuda::device_summary,
               "Name of the current CUDA device, or '' when none is usable (touches the driver: call lazily)");
  cuda_mod.def(
      "device_stats",
      [](bool reset) {
        static const char* names[] = {"h2d_copies", "d2h_copies", "allocations", "synchronizations", "launches"};
        py::dict d;
        for (int i = 0; i < (int)cuda::Counter::N; ++i)
          d[names[i]] = reset ? cuda::g_counters[i].exchange(0) : cuda::g_counters[i].load();
        return d;
      },
      py::arg("reset") = false,
      "Counts of host-to-device and device-to-host copies, device allocations, stream synchronisations and kernel "
      "launches of the compiled CUDA kernels since the last reset (reset=True returns the counts and zeroes them)");
#endif
#ifdef RLNFAST_CUDA_EMULATED
  py::module_ emu = cuda_mod.def_submodule("emulator", "Test hooks of the emulated CUDA runtime (CPU threads)");
  emu.def("register", [](uintptr_t p, size_t bytes, int device) {
    rlnfast_emu::register_device_memory(reinterpret_cast<const void*>(p), bytes, device);
  }, py::arg("ptr"), py::arg("nbytes"), py::arg("device"), "Treat host memory [ptr, ptr+nbytes) as memory of a device");
  emu.def("unregister", [](uintptr_t p) { rlnfast_emu::unregister_device_memory(reinterpret_cast<const void*>(p)); },
          py::arg("ptr"));
  emu.def("set_device_count", &rlnfast_emu::set_device_count, py::arg("n"));
  emu.def("last_launch_device", &rlnfast_emu::last_launch_device);
  emu.def("current_device", &rlnfast_emu::current_device);
  emu.def("live_allocations", &rlnfast_emu::live_allocations, "cudaMalloc'ed buffers not yet freed");
#endif
  cpu.def("num_threads", &cpu::num_threads, "OpenMP threads the CPU kernels use");
  cpu.def("set_num_threads", &cpu::set_num_threads, py::arg("n"),
          "Set the OpenMP threads of the CPU kernels for this process (a cohort worker: cores / workers)");
  bind::bind_regions(cpu, cuda_ptr);
  bind::bind_firstorder(cpu, cuda_ptr);
  bind::bind_dem(cpu, cuda_ptr);
  bind::bind_fractal(cpu, cuda_ptr);
  bind::bind_size(cpu, cuda_ptr);

  m.def("build_info", []() {
    py::dict d;
    d["cpu"] = true;
    d["openmp"] = std::string(RLNFAST_OPENMP_REASON);
    d["cuda"] = RLNFAST_HAS_CUDA;
    d["cuda_reason"] = std::string(RLNFAST_CUDA_REASON);
    d["cuda_emulated"] = RLNFAST_EMULATED;
    d["sanitizers"] = std::string(RLNFAST_SANITIZERS);
#ifdef __VERSION__
    d["compiler"] = std::string(__VERSION__);
#endif
#ifdef RLNFAST_WITH_CUDA
    d["cuda_architectures"] = std::string(RLNFAST_CUDA_ARCHS);
#endif
    return d;
  }, "What was compiled into rlnfast._core (does not touch the GPU)");
}

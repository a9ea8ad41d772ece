// The device-resident pipeline (csrc/cuda/pipeline.h): per case, the CT and the label map go up once (load),
// the per-label stats come back once (the regions are chosen on the host from them), then one packed plan goes
// up, every kernel runs on the device (DEM passes on the regions' boxes, the gather of Original / E / DEM values
// and crops, one segmented sort, first-order per image type, fractal box and DBC counts), and one packed result
// comes back: 3 uploads, 2 downloads and 2 synchronisations per case whatever the number of regions. Device
// scratch lives in a pool of grow-only buffers owned by the Pipeline (freed with it): after warm-up a case
// allocates nothing.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/firstorder_math.h"
#include "common/pipeline_kernel.cuh"
#include "cuda/launch.h"
#include "cuda/pipeline.h"
#include "cuda/runtime.cuh"

namespace rlnfast {
namespace cuda {

namespace {

size_t dtype_bytes(DType t) {
  switch (t) {
    case DType::u8: case DType::i8: return 1;
    case DType::u16: case DType::i16: return 2;
    case DType::u32: case DType::i32: case DType::f32: return 4;
    default: return 8;
  }
}

unsigned grid_of(long long n, int block) {
  long long g = (n + block - 1) / block;
  return (unsigned)std::max<long long>(1, std::min<long long>(g, 1 << 16));
}

enum Slot : int { CT = 0, LAB, STATS, PLAN, VALS, SORTED, TEMP, OUT, MASK, CROP_O, CROP_E, CROP_D, DA, DB, DC, DY, DX,
                  FM, FS, MC, QMIN, QMAX, NSLOTS };

// Makes dev current for the scope and restores the caller's device.
struct DeviceScope {
  int old = 0;
  bool switched = false;
  explicit DeviceScope(int dev) {
    RLNFAST_CUDA_CHECK(cudaGetDevice(&old));
    if (old != dev) {
      RLNFAST_CUDA_CHECK(cudaSetDevice(dev));
      switched = true;
    }
  }
  ~DeviceScope() {
    if (switched) cudaSetDevice(old);
  }
};

}  // namespace

struct Pipeline::Impl {
  int dev = 0;
  cudaStream_t stream = nullptr;
  struct Buf {
    void* p = nullptr;
    size_t cap = 0;
  };
  Buf slots[NSLOTS];
  // the case loaded last
  VolumeView ct{}, lab{};
  bool loaded = false;

  // A pooled buffer of at least n elements of T (grow-only: reallocated, counted, only when too small).
  template <class T>
  T* get(Slot s, size_t n) {
    const size_t bytes = sizeof(T) * std::max<size_t>(n, 1);
    Buf& b = slots[s];
    if (b.cap < bytes) {
      if (b.p) RLNFAST_CUDA_CHECK(cudaFreeAsync(b.p, stream));
      b.p = nullptr;
      b.cap = 0;
      const size_t want = bytes + bytes / 4;
      count(Counter::alloc);
      RLNFAST_CUDA_CHECK(cudaMallocAsync(&b.p, want, stream));
      b.cap = want;
    }
    return static_cast<T*>(b.p);
  }
  ~Impl() {
    int old = 0;
    if (cudaGetDevice(&old) != cudaSuccess) return;
    cudaSetDevice(dev);
    for (Buf& b : slots)
      if (b.p) cudaFree(b.p);
    cudaSetDevice(old);
    cudaGetLastError();
  }
};

Pipeline::Pipeline() : impl_(new Impl) { RLNFAST_CUDA_CHECK(cudaGetDevice(&impl_->dev)); }
Pipeline::~Pipeline() = default;
int Pipeline::device() const { return impl_->dev; }

void Pipeline::load(const VolumeView& ct, const VolumeView& labels, i64 max_label, i64* stats) {
  Impl& m = *impl_;
  const DeviceScope scope(m.dev);
  if (ct.nz != labels.nz || ct.ny != labels.ny || ct.nx != labels.nx)
    throw std::invalid_argument("pipeline: CT and label map shapes differ");
  if (labels.dtype != DType::u8 && labels.dtype != DType::u16 && labels.dtype != DType::i32)
    throw std::invalid_argument("pipeline: the label map must be uint8, uint16 or int32");
  if (max_label < 0) throw std::invalid_argument("pipeline: max_label < 0");
  const i64 n = ct.size();
  const size_t ctb = dtype_bytes(ct.dtype), lb = dtype_bytes(labels.dtype);
  m.loaded = false;
  char* ct_d = m.get<char>(CT, n * ctb);
  char* lab_d = m.get<char>(LAB, n * lb);
  copy_h2d(ct_d, ct.data, n * ctb, m.stream);
  copy_h2d(lab_d, labels.data, n * lb, m.stream);
  const i64 L = max_label + 1;
  long long* st = m.get<long long>(STATS, 8 * L);
  RLNFAST_CUDA_CHECK(cudaMemsetAsync(st, 0, sizeof(long long) * 2 * L, m.stream));
  RLNFAST_CUDA_CHECK(cudaMemsetAsync(st + 2 * L, 0x7f, sizeof(long long) * 3 * L, m.stream));
  RLNFAST_CUDA_CHECK(cudaMemsetAsync(st + 5 * L, 0xff, sizeof(long long) * 3 * L, m.stream));
  unsigned long long* cnt = reinterpret_cast<unsigned long long*>(st);
  unsigned long long* fin = cnt + L;
  long long* lo = st + 2 * L;
  long long* hi = st + 5 * L;
  if (n > 0) {
#define RL_STATS(TS, T, LS, LT)                                                                                      \
  if (ct.dtype == DType::TS && labels.dtype == DType::LS) {                                                          \
    RLNFAST_LAUNCH(rlnfast_pl_stats_##TS##_##LS, grid_of(n, RLNFAST_PL_BLOCK), RLNFAST_PL_BLOCK, 0, m.stream)(        \
        reinterpret_cast<const T*>(ct_d), reinterpret_cast<const LT*>(lab_d), ct.ny, ct.nx, n, max_label, cnt, fin, \
        lo, hi);                                                                                                     \
  }
#define RL_STATS_CT(TS, T) RLNFAST_PL_FOR_EACH_LABEL(RL_STATS, TS, T)
    RLNFAST_PL_FOR_EACH_CT(RL_STATS_CT)
#undef RL_STATS_CT
#undef RL_STATS
    RLNFAST_CUDA_CHECK_LAUNCH();
  }
  copy_d2h(stats, st, sizeof(long long) * 8 * L, m.stream);
  sync(m.stream);
  m.ct = ct;
  m.ct.data = ct_d;
  m.lab = labels;
  m.lab.data = lab_d;
  m.loaded = true;
}

void Pipeline::run(const PipelineRun& r, PipelineResult& res) {
  Impl& m = *impl_;
  if (!m.loaded) throw std::logic_error("pipeline: run() before load()");
  const DeviceScope scope(m.dev);
  const i64 n = r.n;
  const int T = (int)r.types.size();
  const i64 NF = fo::NFeatures;
  res = PipelineResult();
  res.firstorder.resize(T);
  res.n_dbc.resize(T);
  res.vmin.resize(T);
  res.vmax.resize(T);
  if (n == 0) return;
  const i64 dims3[3] = {m.ct.nz, m.ct.ny, m.ct.nx};

  // ---- host plan ----
  std::vector<i64> voff(n + 1, 0), coff(n + 1, 0), dims(3 * n);
  for (i64 i = 0; i < n; ++i) {
    const i64* b = r.bbox + 6 * i;
    i64 vol = 1;
    for (int a = 0; a < 3; ++a) {
      if (b[a] < 0 || b[a + 3] < b[a] || b[a + 3] >= dims3[a])
        throw std::invalid_argument("pipeline: region " + std::to_string(i) + " has a bounding box outside the volume");
      dims[3 * i + a] = b[a + 3] - b[a] + 1;
      vol *= dims[3 * i + a];
    }
    if (r.count[i] <= 0 || r.count[i] > vol)
      throw std::invalid_argument("pipeline: region " + std::to_string(i) + " has a bad voxel count");
    voff[i + 1] = voff[i] + r.count[i];
    coff[i + 1] = coff[i] + vol;
  }
  const i64 total = voff[n], ctotal = coff[n];
  int k_o = -1, k_e = -1, k_d = -1, t_e = -1, t_d = -1, n_fo = 0;
  std::vector<int> stream_of(T, -1);
  bool crop_o = false, crop_e = false, any_dbc = false;
  for (int t = 0; t < T; ++t) {
    const PipelineImageType& it = r.types[t];
    if (it.kind == PlElasticity) t_e = t;
    if (it.kind == PlDem) t_d = t;
    if (it.firstorder) {
      stream_of[t] = n_fo++;
      if (it.kind == PlOriginal) k_o = stream_of[t];
      if (it.kind == PlElasticity) k_e = stream_of[t];
      if (it.kind == PlDem) k_d = stream_of[t];
    }
    if (it.dbc) {
      any_dbc = true;
      if (it.kind == PlOriginal) crop_o = true;
      if (it.kind == PlElasticity) crop_e = true;
    }
  }
  const bool boxes = !r.box_region.empty();
  const bool need_mask = boxes || any_dbc;
  const bool need_dem = t_d >= 0 && (r.types[t_d].firstorder || r.types[t_d].dbc);

  std::vector<long long> plan;
  auto put = [&plan](const long long* p, size_t k) {
    const size_t at = plan.size();
    plan.insert(plan.end(), p, p + k);
    return at;
  };
  std::vector<long long> rows(n * RLNFAST_PL_RCOL);
  for (i64 i = 0; i < n; ++i) {
    long long* w = rows.data() + i * RLNFAST_PL_RCOL;
    w[0] = r.label[i];
    for (int a = 0; a < 6; ++a) w[1 + a] = r.bbox[6 * i + a];
    w[7] = voff[i];
    w[8] = coff[i];
  }
  const size_t p_rows = put(rows.data(), rows.size());
  std::vector<long long> fo_off((size_t)n_fo * n + 1);
  for (int k = 0; k < n_fo; ++k)
    for (i64 i = 0; i < n; ++i) fo_off[(size_t)k * n + i] = k * total + voff[i];
  fo_off[(size_t)n_fo * n] = (long long)n_fo * total;
  const size_t p_fo = put(fo_off.data(), fo_off.size());
  const size_t p_coff = put(coff.data(), coff.size());
  const size_t p_dims = put(dims.data(), dims.size());

  DemArgs da{};
  DemPlan dp;
  size_t p_desc = 0, p_w = 0;
  if (need_dem) {
    const PipelineImageType& it = r.types[t_d];
    da.ct = m.ct;
    for (int a = 0; a < 3; ++a) da.spacing[a] = r.spacing_mm[a];
    da.sigma = it.sigma;
    da.params = it.e;
    da.boxes = r.bbox;
    da.n_boxes = n;
    da.out_offsets = coff.data();
    da.out_f32 = 0;
    da.stream = m.stream;
    dp = dem_plan(da);
    p_desc = put(dp.desc.data(), dp.desc.size());
    std::vector<long long> wbits(dp.w.size());
    std::memcpy(wbits.data(), dp.w.data(), sizeof(double) * dp.w.size());
    p_w = put(wbits.data(), wbits.size());
  }

  struct Pairs {
    i64 np = 0, nt = 0, nb = 0;
    size_t preg = 0, psize = 0, boff = 0, tp = 0, ts = 0;
    FractalPlan fp;
  };
  auto put_pairs = [&](const std::vector<i64>& reg, const std::vector<i64>& size) {
    Pairs q;
    q.np = (i64)reg.size();
    if (size.size() != reg.size()) throw std::invalid_argument("pipeline: pair regions and sizes differ in length");
    for (i64 p = 0; p < q.np; ++p)
      if (reg[p] < 0 || reg[p] >= n || size[p] <= 0) throw std::invalid_argument("pipeline: bad fractal pair");
    q.fp = fractal_plan(dims.data(), r.spacing_units, reg.data(), size.data(), q.np);
    q.nt = (i64)q.fp.tile_pair.size();
    q.nb = q.fp.box_off[q.np];
    q.preg = put(reg.data(), reg.size());
    q.psize = put(size.data(), size.size());
    q.boff = put(q.fp.box_off.data(), q.fp.box_off.size());
    q.tp = put(q.fp.tile_pair.data(), q.fp.tile_pair.size());
    q.ts = put(q.fp.tile_start.data(), q.fp.tile_start.size());
    return q;
  };
  Pairs bx;
  if (boxes) bx = put_pairs(r.box_region, r.box_size);
  std::vector<Pairs> dbc(T);
  for (int t = 0; t < T; ++t)
    if (r.types[t].dbc) dbc[t] = put_pairs(r.types[t].dbc_region, r.types[t].dbc_size);

  // ---- output layout (8-byte words) ----
  size_t o = 0;
  std::vector<size_t> o_fo(T, 0), o_dbc(T, 0), o_vmin(T, 0), o_vmax(T, 0);
  for (int t = 0; t < T; ++t)
    if (r.types[t].firstorder) { o_fo[t] = o; o += n * NF; }
  const size_t o_nan = o;
  o += n;
  const size_t o_box = o;
  o += 3 * bx.np;
  for (int t = 0; t < T; ++t)
    if (r.types[t].dbc) {
      o_dbc[t] = o; o += dbc[t].np;
      o_vmin[t] = o; o += n;
      o_vmax[t] = o; o += n;
    }
  const size_t n_out = o;

  // ---- device ----
  cudaStream_t s = m.stream;
  long long* plan_d = m.get<long long>(PLAN, plan.size());
  copy_h2d(plan_d, plan.data(), sizeof(long long) * plan.size(), s);
  long long* out_d = m.get<long long>(OUT, n_out);
  double* outf = reinterpret_cast<double*>(out_d);
  RLNFAST_CUDA_CHECK(cudaMemsetAsync(out_d + o_nan, 0xff, sizeof(long long) * n, s));

  double* dem_crop = nullptr;
  if (need_dem) {
    dem_crop = m.get<double>(CROP_D, ctotal);
    double* A = m.get<double>(DA, dp.n_vox);
    double* B = m.get<double>(DB, dp.n_vox);
    double* C = m.get<double>(DC, dp.n_vox);
    double* Y = m.get<double>(DY, dp.n_vox);
    double* X = m.get<double>(DX, dp.n_vox);
    dem_passes_f64(da, dp, plan_d + p_desc, reinterpret_cast<const double*>(plan_d + p_w), A, B, C, Y, X,
                   reinterpret_cast<unsigned long long*>(out_d + o_nan), dem_crop);
  }
  double* vals = n_fo ? m.get<double>(VALS, (size_t)n_fo * total) : nullptr;
  unsigned char* mask = need_mask ? m.get<unsigned char>(MASK, ctotal) : nullptr;
  double* co = crop_o ? m.get<double>(CROP_O, ctotal) : nullptr;
  double* ce = crop_e ? m.get<double>(CROP_E, ctotal) : nullptr;
  if (n_fo || need_mask) {
    dem::ElasticityParams pe = t_e >= 0 ? r.types[t_e].e : dem::ElasticityParams{};
#define RL_GATHER(TS, T, LS, LT)                                                                                    \
  if (m.ct.dtype == DType::TS && m.lab.dtype == DType::LS) {                                                        \
    RLNFAST_LAUNCH(rlnfast_pl_gather_##TS##_##LS, (unsigned)n, RLNFAST_PL_BLOCK, 0, s)(                              \
        static_cast<const T*>(m.ct.data), static_cast<const LT*>(m.lab.data), m.ct.ny, m.ct.nx,                      \
        (const long long*)(plan_d + p_rows), (long long)n, (long long)total, k_o, k_e, k_d, pe.clip_lo, pe.clip_hi,  \
        pe.rho_w, pe.gamma, vals, mask, co, ce, (const double*)dem_crop);                                            \
  }
#define RL_GATHER_CT(TS, T) RLNFAST_PL_FOR_EACH_LABEL(RL_GATHER, TS, T)
    RLNFAST_PL_FOR_EACH_CT(RL_GATHER_CT)
#undef RL_GATHER_CT
#undef RL_GATHER
    RLNFAST_CUDA_CHECK_LAUNCH();
  }
  if (n_fo) {
    const i64 nv = (i64)n_fo * total, ns = (i64)n_fo * n;
    double* sorted = m.get<double>(SORTED, nv);
    size_t tb = 0;
    segmented_sort(nullptr, tb, vals, sorted, nv, ns, plan_d + p_fo, s);
    void* temp = m.get<char>(TEMP, tb);
    segmented_sort(temp, tb, vals, sorted, nv, ns, plan_d + p_fo, s);
    for (int t = 0; t < T; ++t) {
      const PipelineImageType& it = r.types[t];
      if (!it.firstorder) continue;
      firstorder_sorted(vals, sorted, plan_d + p_fo + (size_t)stream_of[t] * n, n, it.bin_mode, it.bin_width,
                        it.bin_count, it.edges_f32, it.shift, 1.0, outf + o_fo[t], s);
    }
  }
  const i64* offs_d = plan_d + p_coff;
  const i64* dims_d = plan_d + p_dims;
  if (boxes) {
    const i64 nb = bx.nb;
    unsigned char* fm = m.get<unsigned char>(FM, nb);
    unsigned char* fs = m.get<unsigned char>(FS, nb);
    int* mc = m.get<int>(MC, nb);
    fractal_boxes_device(bx.np, bx.nt, nb, plan_d + bx.tp, plan_d + bx.ts, mask, offs_d, dims_d, r.spacing_units,
                         plan_d + bx.preg, plan_d + bx.psize, plan_d + bx.boff, fm, fs, mc, out_d + o_box,
                         out_d + o_box + bx.np, out_d + o_box + 2 * bx.np, s);
  }
  for (int t = 0; t < T; ++t) {
    const PipelineImageType& it = r.types[t];
    if (!it.dbc) continue;
    const Pairs& q = dbc[t];
    const double* vcrop = it.kind == PlOriginal ? co : (it.kind == PlElasticity ? ce : dem_crop);
    int* qmin = m.get<int>(QMIN, q.nb);
    int* qmax = m.get<int>(QMAX, q.nb);
    fractal_dbc_device(n, q.np, q.nt, q.nb, plan_d + q.tp, plan_d + q.ts, mask, vcrop, offs_d, dims_d,
                       r.spacing_units, plan_d + q.preg, plan_d + q.psize, plan_d + q.boff, it.grey_levels, qmin, qmax,
                       outf + o_vmin[t], outf + o_vmax[t], out_d + o_dbc[t], s);
  }
  std::vector<long long> host(n_out);
  copy_d2h(host.data(), out_d, sizeof(long long) * n_out, s);
  sync(s);

  // ---- unpack ----
  const double* hf = reinterpret_cast<const double*>(host.data());
  for (int t = 0; t < T; ++t) {
    if (r.types[t].firstorder) res.firstorder[t].assign(hf + o_fo[t], hf + o_fo[t] + n * NF);
    if (r.types[t].dbc) {
      res.n_dbc[t].assign(host.begin() + o_dbc[t], host.begin() + o_dbc[t] + dbc[t].np);
      res.vmin[t].assign(hf + o_vmin[t], hf + o_vmin[t] + n);
      res.vmax[t].assign(hf + o_vmax[t], hf + o_vmax[t] + n);
    }
  }
  res.dem_first_nan.assign(n, -1);
  if (need_dem)
    for (i64 i = 0; i < n; ++i) {
      const unsigned long long b = (unsigned long long)host[o_nan + i];
      res.dem_first_nan[i] = b == ~0ULL ? -1 : (i64)b;
    }
  if (boxes) {
    res.n_mask.assign(host.begin() + o_box, host.begin() + o_box + bx.np);
    res.n_surface.assign(host.begin() + o_box + bx.np, host.begin() + o_box + 2 * bx.np);
    res.sum_m2.assign(host.begin() + o_box + 2 * bx.np, host.begin() + o_box + 3 * bx.np);
    res.n_grid.resize(bx.np);
    for (i64 p = 0; p < bx.np; ++p) res.n_grid[p] = bx.fp.box_off[p + 1] - bx.fp.box_off[p];
  }
}

}  // namespace cuda
}  // namespace rlnfast

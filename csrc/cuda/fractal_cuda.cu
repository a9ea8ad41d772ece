// Fractal box counting on the GPU: host crops in, tiles of voxels scattered into per-pair box scratch, then
// one block per (region, size) pair reduces its boxes; kernels in common/fractal_kernel.cuh (shared with CuPy).
#include <vector>

#include "common/fractal_kernel.cuh"
#include "common/ops.h"
#include "cuda/launch.h"
#include "cuda/runtime.cuh"

namespace rlnfast {
namespace cuda {

namespace {

// One kernel launch of RLNFAST_FR_BLOCK threads per block on st, checked; nothing for an empty grid.
template <class... P, class... A>
void launch(void (*kernel)(P...), i64 blocks, cudaStream_t st, A... args) {
  if (blocks <= 0) return;
  RLNFAST_LAUNCH(kernel, (unsigned)blocks, RLNFAST_FR_BLOCK, 0, st)(args...);
  RLNFAST_CUDA_CHECK_LAUNCH();
}

// The host-side plan shared by both ops: box offsets per pair and the voxel tiles.
struct Plan {
  std::vector<i64> box_off, tile_pair, tile_start;
};

Plan make_plan(const FractalCrops& c, const i64* region, const i64* size, i64 n_pairs) {
  Plan pl;
  pl.box_off.resize(n_pairs + 1);
  pl.box_off[0] = 0;
  for (i64 p = 0; p < n_pairs; ++p) {
    const i64* d = c.dims + 3 * region[p];
    i64 nb = 1;
    for (int a = 0; a < 3; ++a) nb *= fr::grid_boxes(d[a], c.spacing[a], size[p]);
    pl.box_off[p + 1] = pl.box_off[p] + nb;
    const i64 nvox = d[0] * d[1] * d[2];
    for (i64 s = 0; s < nvox; s += RLNFAST_FR_TILE) {
      pl.tile_pair.push_back(p);
      pl.tile_start.push_back(s);
    }
  }
  return pl;
}

// What both ops set up before their kernels: the plan, and the crops, the pairs and the plan on the device.
struct Work {
  const Plan pl;
  const i64 nvals, nboxes, nt;
  DevBuf<unsigned char> mask;
  DevBuf<i64> offsets, dims, preg, psize, boff, tp, ts;
  Work(const FractalCrops& c, const i64* pair_region, const i64* pair_size, i64 n_pairs, cudaStream_t st)
      : pl(make_plan(c, pair_region, pair_size, n_pairs)), nvals(c.offsets[c.n_regions]), nboxes(pl.box_off[n_pairs]),
        nt((i64)pl.tile_pair.size()), mask(nvals, st), offsets(c.n_regions + 1, st), dims(3 * c.n_regions, st),
        preg(n_pairs, st), psize(n_pairs, st), boff(n_pairs + 1, st), tp(nt, st), ts(nt, st) {
    mask.upload(c.mask, nvals);
    offsets.upload(c.offsets, c.n_regions + 1);
    dims.upload(c.dims, 3 * c.n_regions);
    preg.upload(pair_region, n_pairs);
    psize.upload(pair_size, n_pairs);
    boff.upload(pl.box_off.data(), n_pairs + 1);
    tp.upload(pl.tile_pair.data(), nt);
    ts.upload(pl.tile_start.data(), nt);
  }
};

}  // namespace

FractalPlan fractal_plan(const i64* dims, const i64 spacing[3], const i64* pair_region, const i64* pair_size,
                         i64 n_pairs) {
  FractalCrops c{};
  c.dims = dims;
  for (int a = 0; a < 3; ++a) c.spacing[a] = spacing[a];
  Plan p = make_plan(c, pair_region, pair_size, n_pairs);
  FractalPlan out;
  out.box_off = std::move(p.box_off);
  out.tile_pair = std::move(p.tile_pair);
  out.tile_start = std::move(p.tile_start);
  return out;
}

void fractal_boxes_device(i64 n_pairs, i64 n_tiles, i64 n_boxes, const i64* tp, const i64* ts, const unsigned char* mask,
                          const i64* offsets, const i64* dims, const i64 spacing[3], const i64* preg, const i64* psize,
                          const i64* boff, unsigned char* fm, unsigned char* fs, int* mc, i64* n_mask, i64* n_surface,
                          i64* sum_m2, void* stream) {
  if (n_pairs == 0) return;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (n_boxes) {
    RLNFAST_CUDA_CHECK(cudaMemsetAsync(fm, 0, n_boxes, st));
    RLNFAST_CUDA_CHECK(cudaMemsetAsync(fs, 0, n_boxes, st));
    RLNFAST_CUDA_CHECK(cudaMemsetAsync(mc, 0, sizeof(int) * n_boxes, st));
  }
  launch(rlnfast_fractal_boxes_scatter, n_tiles, st, tp, ts, n_tiles, mask, offsets, dims, spacing[0], spacing[1],
         spacing[2], preg, psize, boff, fm, fs, mc);
  launch(rlnfast_fractal_boxes_reduce, n_pairs, st, n_pairs, boff, (const unsigned char*)fm, (const unsigned char*)fs,
         (const int*)mc, n_mask, n_surface, sum_m2);
}

void fractal_dbc_device(i64 n_regions, i64 n_pairs, i64 n_tiles, i64 n_boxes, const i64* tp, const i64* ts,
                        const unsigned char* mask, const double* values, const i64* offsets, const i64* dims,
                        const i64 spacing[3], const i64* preg, const i64* psize, const i64* boff, int grey_levels,
                        int* qmin, int* qmax, double* vmin, double* vmax, i64* n_dbc, void* stream) {
  if (n_regions == 0) return;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (n_boxes) {
    RLNFAST_CUDA_CHECK(cudaMemsetAsync(qmin, 0x7f, sizeof(int) * n_boxes, st));   // above any level
    RLNFAST_CUDA_CHECK(cudaMemsetAsync(qmax, 0xff, sizeof(int) * n_boxes, st));   // -1: empty box
  }
  launch(rlnfast_fractal_minmax, n_regions, st, n_regions, mask, values, offsets, vmin, vmax);
  if (n_pairs == 0) return;
  launch(rlnfast_fractal_dbc_scatter, n_tiles, st, tp, ts, n_tiles, mask, values, offsets, dims, spacing[0],
         spacing[1], spacing[2], preg, psize, boff, (const double*)vmin, (const double*)vmax, grey_levels, qmin, qmax);
  launch(rlnfast_fractal_dbc_reduce, n_pairs, st, n_pairs, boff, (const int*)qmin, (const int*)qmax, n_dbc);
}

void fractal_boxes_host(const FractalBoxArgs& h) {
  if (h.n_pairs == 0) return;
  cudaStream_t st = static_cast<cudaStream_t>(h.stream);
  const FractalCrops& c = h.crops;
  const Work w(c, h.pair_region, h.pair_size, h.n_pairs, st);
  DevBuf<unsigned char> fm(w.nboxes, st), fs(w.nboxes, st);
  DevBuf<i64> o1(h.n_pairs, st), o2(h.n_pairs, st), o3(h.n_pairs, st);
  DevBuf<int> mc(w.nboxes, st);
  fm.fill_bytes(0, w.nboxes);
  fs.fill_bytes(0, w.nboxes);
  mc.fill_bytes(0, w.nboxes);
  launch(rlnfast_fractal_boxes_scatter, w.nt, st, w.tp.p, w.ts.p, w.nt, w.mask.p, w.offsets.p, w.dims.p,
         c.spacing[0], c.spacing[1], c.spacing[2], w.preg.p, w.psize.p, w.boff.p, fm.p, fs.p, mc.p);
  launch(rlnfast_fractal_boxes_reduce, h.n_pairs, st, h.n_pairs, w.boff.p, fm.p, fs.p, mc.p, o1.p, o2.p, o3.p);
  o1.download(h.n_mask, h.n_pairs);
  o2.download(h.n_surface, h.n_pairs);
  o3.download(h.sum_m2, h.n_pairs);
  sync(st);
  for (i64 p = 0; p < h.n_pairs; ++p) h.n_grid[p] = w.pl.box_off[p + 1] - w.pl.box_off[p];
}

void fractal_dbc_host(const FractalDbcArgs& h) {
  cudaStream_t st = static_cast<cudaStream_t>(h.stream);
  const FractalCrops& c = h.crops;
  if (c.n_regions == 0) return;
  const Work w(c, h.pair_region, h.pair_size, h.n_pairs, st);
  DevBuf<double> values(w.nvals, st), vmin(c.n_regions, st), vmax(c.n_regions, st);
  DevBuf<i64> out(h.n_pairs, st);
  DevBuf<int> qmin(w.nboxes, st), qmax(w.nboxes, st);
  values.upload(h.values, w.nvals);
  qmin.fill_bytes(0x7f, w.nboxes);   // 0x7f7f7f7f: above any level
  qmax.fill_bytes(0xff, w.nboxes);   // -1: empty box
  launch(rlnfast_fractal_minmax, c.n_regions, st, c.n_regions, w.mask.p, values.p, w.offsets.p, vmin.p, vmax.p);
  launch(rlnfast_fractal_dbc_scatter, w.nt, st, w.tp.p, w.ts.p, w.nt, w.mask.p, values.p, w.offsets.p, w.dims.p,
         c.spacing[0], c.spacing[1], c.spacing[2], w.preg.p, w.psize.p, w.boff.p, vmin.p, vmax.p, h.grey_levels,
         qmin.p, qmax.p);
  launch(rlnfast_fractal_dbc_reduce, h.n_pairs, st, h.n_pairs, w.boff.p, qmin.p, qmax.p, out.p);
  out.download(h.n_dbc, h.n_pairs);
  vmin.download(h.vmin, c.n_regions);
  vmax.download(h.vmax, c.n_regions);
  sync(st);
}

}  // namespace cuda
}  // namespace rlnfast

// Node size (features.md, "Node size (class size)"): Feret diameters of one axial slice of a region.
//
// A slice's shape is the union of its pixels' squares. Its convex hull is the hull of the pixels' corner
// points, and along each corner row ("level") Y only the leftmost and rightmost corners matter:
//   left[Y]  = min x over the pixels of rows Y-1 and Y,  right[Y] = 1 + max x over the same pixels,
// in pixel units (x: column, y: row). The hull is built in these integer coordinates (Andrew's monotone
// chain; the levels already come sorted by (y, x)), so every orientation test is exact. The map to mm,
// (x, y) -> (x dx, y dy), is linear with positive factors: it keeps the hull, its vertex order and which
// vertex lies farthest from an edge's line, so the rotating calipers run on the integers and only the
// final lengths are evaluated in mm:
//   F_min = min over hull edges e of max over vertices v of dist(v, line(e))   (a minimal caliper touches
//           an edge), F_max = max over antipodal vertex pairs of |v - w|       (the diameter is antipodal).
#pragma once
#include "hd.h"

namespace rlnfast {
namespace sz {

RLNFAST_HD i64 cross(i64 ox, i64 oy, i64 ax, i64 ay, i64 bx, i64 by) {
  return (ax - ox) * (by - oy) - (ay - oy) * (bx - ox);
}

// Convex hull of n points sorted by (y, x) ascending (duplicates allowed), counter-clockwise in a
// y-up frame, strictly convex (collinear points dropped). hx, hy: room for 2 n + 1 entries. Returns the
// number of hull vertices.
RLNFAST_HD int hull_sorted(const i64* px, const i64* py, int n, i64* hx, i64* hy) {
  if (n <= 0) return 0;
  int k = 0;
  for (int i = 0; i < n; ++i) {   // lower chain
    while (k >= 2 && cross(hx[k - 2], hy[k - 2], hx[k - 1], hy[k - 1], px[i], py[i]) <= 0) --k;
    hx[k] = px[i];
    hy[k] = py[i];
    ++k;
  }
  const int lower = k + 1;
  for (int i = n - 2; i >= 0; --i) {   // upper chain
    while (k >= lower && cross(hx[k - 2], hy[k - 2], hx[k - 1], hy[k - 1], px[i], py[i]) <= 0) --k;
    hx[k] = px[i];
    hy[k] = py[i];
    ++k;
  }
  return k > 1 ? k - 1 : k;   // the last point repeats the first
}

RLNFAST_HD double dist2(i64 ax, i64 ay, i64 bx, i64 by, double dx, double dy) {
  const double u = (double)(ax - bx) * dx, v = (double)(ay - by) * dy;
  return u * u + v * v;
}

// Rotating calipers on a strictly convex CCW hull of h >= 3 vertices (pixel units) with pixel size
// dx, dy (mm): minimum caliper width and maximum Feret diameter, in mm.
RLNFAST_HD void feret(const i64* hx, const i64* hy, int h, double dx, double dy, double* fmin, double* fmax) {
  double wmin = 0.0, d2max = 0.0;
  bool first = true;
  int j = 1 % h;
  for (int i = 0; i < h; ++i) {
    const int i1 = (i + 1) % h;
    const i64 ex = hx[i1] - hx[i], ey = hy[i1] - hy[i];
    // twice the area of (p_i, p_i1, p_k): proportional to the distance of p_k from the edge's line
    i64 a = ex * (hy[j] - hy[i]) - ey * (hx[j] - hx[i]);
    for (;;) {
      const int jn = (j + 1) % h;
      const i64 an = ex * (hy[jn] - hy[i]) - ey * (hx[jn] - hx[i]);
      if (an <= a) break;
      j = jn;
      a = an;
    }
    const double ux = (double)ex * dx, uy = (double)ey * dy;
    const double w = (double)a * dx * dy / sqrt(ux * ux + uy * uy);
    if (first || w < wmin) wmin = w;
    first = false;
    double d = dist2(hx[i], hy[i], hx[j], hy[j], dx, dy);
    if (d > d2max) d2max = d;
    d = dist2(hx[i1], hy[i1], hx[j], hy[j], dx, dy);
    if (d > d2max) d2max = d;
    const int jn = (j + 1) % h;   // an edge parallel to e: both of its ends are antipodal to e's ends
    if (ex * (hy[jn] - hy[i]) - ey * (hx[jn] - hx[i]) == a) {
      d = dist2(hx[i], hy[i], hx[jn], hy[jn], dx, dy);
      if (d > d2max) d2max = d;
      d = dist2(hx[i1], hy[i1], hx[jn], hy[jn], dx, dy);
      if (d > d2max) d2max = d;
    }
  }
  *fmin = wmin;
  *fmax = sqrt(d2max);
}

}  // namespace sz
}  // namespace rlnfast

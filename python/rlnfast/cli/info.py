"""``rlnfast info``: what was built and which backends are usable here."""
from __future__ import annotations

import json

HELP = "print build information and which backends are usable (and why not)"


def add_arguments(p):
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    import rlnfast
    from rlnfast import _backends

    info = rlnfast.build_info()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"rlnfast {info['version']}")
    print(f"  compiled: C++ CPU {'yes' if info.get('cpu') else 'no'} ({info.get('openmp', '')}); "
          f"CUDA {'yes' if info.get('cuda') else 'no'} ({info.get('cuda_reason', '')})")
    try:
        auto = _backends.resolve("auto")
    except Exception as exc:  # pragma: no cover
        auto = f"none ({exc})"
    print(f"  auto backend: {auto}")
    for name, st in info["backends"].items():
        print(f"  {name:6s} {'usable' if st['available'] else 'absent':7s} {st['reason']}")
    for op, why in info.get("host_ops", {}).items():
        print(f"  on cuda/cupy, {op} runs on the host: {why}")
    return 0

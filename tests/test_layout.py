"""The package's layout rules (docs/architecture.md), read from the source: the NumPy reference imports nothing
from rlnfast.ops, no module imports one that imports it back (module-level and function-level imports
alike), and a feature class is one module that registers itself."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest


def _package_root() -> Path:
    spec = importlib.util.find_spec("rlnfast")
    return Path(spec.origin).parent


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its source (``from pkg import sub`` counts as
    importing ``pkg.sub`` when ``sub`` is a module, else ``pkg``)."""
    root = _package_root()
    files = {_module_name(p, root): p for p in root.rglob("*.py")}
    # compiled extensions (rlnfast._core) are modules too, with no imports of their own
    ext = {_module_name(p.with_name(p.name.split(".")[0] + ".py"), root) for p in root.rglob("*.so")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        here = mod.split(".") if is_pkg else mod.split(".")[:-1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [(target, [a.name for a in node.names])]
            else:
                continue
            for target, names in targets:
                if not target.startswith("rlnfast"):
                    continue
                subs = [f"{target}.{n}" for n in (names or []) if f"{target}.{n}" in files or f"{target}.{n}" in ext]
                if subs:
                    deps.update(subs)
                if not names or len(subs) < len(names):
                    while target not in files and "." in target:
                        target = target.rsplit(".", 1)[0]
                    deps.add(target)
        deps.discard(mod)
        graph[mod] = deps
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_graph_sees_imports():
    g = import_graph()
    # the checker itself: known edges are found (relative, absolute and function-level imports)
    assert "rlnfast.ops.firstorder" in g["rlnfast.features.firstorder"]
    assert "rlnfast.reference.firstorder" in g["rlnfast.ops.firstorder"]   # a function-level import
    assert "rlnfast.spec.firstorder" in g["rlnfast.reference.firstorder"]


def test_no_import_cycles():
    assert _cycles(import_graph()) == []


def test_cycle_checker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_reference_imports_nothing_from_ops():
    g = import_graph()
    refs = [m for m in g if m.startswith("rlnfast.reference")]
    assert refs
    for m in refs:
        bad = sorted(d for d in g[m] if d == "rlnfast.ops" or d.startswith("rlnfast.ops.") or d.startswith("rlnfast._cupy"))
        assert not bad, f"{m} imports {bad}"


def test_spec_imports_no_implementation():
    g = import_graph()
    for m in (m for m in g if m.startswith("rlnfast.spec")):
        assert not [d for d in g[m] if d.startswith(("rlnfast.ops", "rlnfast.reference", "rlnfast._cupy"))], m


def test_builtin_classes_and_image_types_registered():
    from rlnfast.features import feature_classes
    from rlnfast.imagetypes import REGISTRY

    classes = feature_classes()
    assert {"firstorder", "fractal"} <= set(classes)
    for fc in classes.values():
        assert set(fc.docs) >= set(fc.features) and all(len(fc.docs[f]) > 10 for f in fc.features)
    assert {"Original", "Elasticity", "DEM"} <= set(REGISTRY)


def test_a_new_feature_class_is_one_registration(tmp_path):
    """A tiny class registered from outside the package: parameter files accept it and its settings, extract
    computes it for every region, its settings are validated, and no other module changes."""
    from rlnfast import extract, features

    calls = []

    def volume(items, params, feats, backend):
        calls.append(len(items))
        scale = params.settings["tinyScale"]
        return [({"original_tiny_Volume": scale * regions.count * img.voxel_volume}, {"diagnostics_tiny_Unit": "mm^3"})
                for img, regions in items]

    def check(s):
        if not s.get("tinyScale", 1) > 0:
            raise ValueError(f"tinyScale={s.get('tinyScale')!r}: expected > 0")

    fc = features.FeatureClass("tiny", features=("Volume",), docs={"Volume": "N_voxels * V_voxel * tinyScale, mm^3."},
                               settings={"tinyScale": 1.0}, check_settings=check, per_region=volume)
    features.register(fc)
    try:
        labels = np.zeros((4, 5, 6), np.uint8)
        labels[0:2, 0:2, 0:3] = 1
        labels[3, 4, 5] = 2
        image = np.arange(labels.size, dtype=np.int16).reshape(labels.shape)
        df = extract(image, labels, {"featureClass": {"tiny": None, "firstorder": ["Mean"]},
                                     "setting": {"tinyScale": 2.0}}, backend="numpy", spacing=(0.5, 1.0, 2.0))
        assert calls == [1]
        np.testing.assert_allclose(df["original_tiny_Volume"], [2.0 * 12 * 1.0, 2.0 * 1 * 1.0])
        assert list(df["diagnostics_tiny_Unit"]) == ["mm^3", "mm^3"]
        assert "original_firstorder_Mean" in df.columns
        with pytest.raises(ValueError, match="tinyScale"):
            extract(image, labels, {"featureClass": {"firstorder": None}, "setting": {"tinyScale": -1}},
                    backend="numpy", spacing=(0.5, 1.0, 2.0))
    finally:
        features._REGISTRY.pop("tiny", None)
    with pytest.raises(ValueError, match="tinyScale"):   # gone again: an unknown key
        extract(image, labels, {"setting": {"tinyScale": 2.0}}, backend="numpy", spacing=(0.5, 1.0, 2.0))

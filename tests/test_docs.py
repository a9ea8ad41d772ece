"""The user documentation ships in the repository and stays true: docs/parameters.md documents every setting,
feature class and image type the registries hold (and is what docs/gen_parameters_md.py writes), docs/cli.md
every command and option, docs/features.md its sections, and README.md links only inside the repository."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from rlnfast.features import feature_classes
from rlnfast.imagetypes import REGISTRY
from rlnfast.params import supported_settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _section(text: str, heading: str) -> str:
    m = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    assert m, f"no section {heading!r}"
    level = len(m.group(1))
    rest = text[m.end():]
    nxt = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[:nxt.start()] if nxt else rest


def test_parameters_md_documents_every_setting_class_and_image_type():
    text = (DOCS / "parameters.md").read_text(encoding="utf-8")
    assert "UNDOCUMENTED" not in text, "a setting, class or image type has no description in docs/gen_parameters_md.py"
    settings = _section(text, "Settings")
    for key in supported_settings():
        row = [l for l in settings.splitlines() if l.startswith(f"| `{key}` |")]
        assert row, f"setting {key!r} is not documented in docs/parameters.md"
    for name, it in REGISTRY.items():
        assert f"| `{name}` | `{it.prefix}` |" in _section(text, "Image types"), f"image type {name!r} not documented"
    for name, fc in feature_classes().items():
        sec = _section(text, f"`{name}`")
        for f in fc.features:
            assert f"`{f}`" in sec, f"feature {name}.{f} not documented"


def test_parameters_md_is_generated_from_the_registries():
    p = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_parameters_md.py"), "--check"],
                       capture_output=True, text=True, env={**__import__("os").environ,
                                                            "PYTHONPATH": str(Path(__import__("rlnfast").__file__).parents[1])})
    assert p.returncode == 0, p.stderr


def test_cli_md_documents_every_command_and_option():
    from rlnfast.cli import build_parser

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    sub = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0]
    for name, p in sub.choices.items():
        sec = _section(text, f"`rlnfast {name}`")
        for a in p._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            for opt in a.option_strings:
                assert f"`{opt}" in sec, f"docs/cli.md: rlnfast {name} option {opt} not documented"
            if not a.option_strings:
                assert a.metavar is None or str(a.metavar) in sec, f"docs/cli.md: rlnfast {name} {a.metavar}"


def test_features_md_sections_and_readme_links():
    text = (DOCS / "features.md").read_text(encoding="utf-8")
    for heading in ("Inputs and regions", "Image types", "Elasticity image E", "DEM", "First-order features",
                    "Node size", "Fractal features"):
        assert re.search(rf"^## {re.escape(heading)}", text, re.M), f"docs/features.md: no section {heading!r}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert links, "README has no links?"
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        assert not link.startswith(".."), f"README links outside the repository: {link}"
        assert (ROOT / link).exists(), f"README links to a missing file: {link}"
    for doc in ("docs/parameters.md", "docs/cli.md", "docs/features.md", "docs/benchmarks.md"):
        assert doc in links, f"README does not link {doc}"

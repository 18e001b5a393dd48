"""Builds the page of ``dvc plots show`` / ``dvc plots diff`` that needs no network: a
maintainer's tool, kept beside what it builds rather than in the ``sonic`` library.

dvc-render's own page loads vega, vega-lite and vega-embed from cdn.jsdelivr.net through its
``{scripts}`` placeholder. ``.dvc/config`` sets ``plots.html_template = html/plots.html``
(relative to ``.dvc/``); that template has no such placeholder, so DVC injects no script tag,
and holds the releases dvc-render names instead, inlined byte for byte from their npm tarballs.
The committed template is ready to use; rebuild it (e.g. after upgrading dvc-render) with::

    python .dvc/html/build.py                  # npm pack → .dvc/html/
    python .dvc/html/build.py --tarballs DIR   # from DIR/vega-5.20.2.tgz, …
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

LIBRARIES = ("vega", "vega-lite", "vega-embed")  # load order: each needs the ones before it
HTML_DIR = Path(__file__).resolve().parent  # .dvc/html
# One line per inlined library in the page's header comment; `vendored()` reads them back.
HEADER_LINE = re.compile(r"^  (?P<name>[a-z-]+)@(?P<version>\S+) (?P<file>\S+) "
                         r"sha256=(?P<sha256>[0-9a-f]{64}) npm=(?P<integrity>\S+)$", re.M)

# vega-embed looks its target up with document.querySelector('#' + id); DVC's ids are plot
# names with some characters replaced, so two plots can share one (plots/train/loss.csv and
# plots/train_loss.csv: the second then draws over the first and its own box stays empty), and
# an id that starts with a digit is no valid selector. DVC's <script> sits inside its plot's
# <div>, so the wrapper embeds into that script's parent instead. It also drops the "Open in
# Vega Editor" action (a page on vega.github.io), keeps each view on its box (box.vegaView, for
# the console and the tests) and writes a failure into the box rather than leaving it blank.
EMBED_WRAPPER = """(function () {
  var embed = window.vegaEmbed;
  var actions = {export: true, source: true, compiled: true, editor: false};
  window.vegaEmbed = Object.assign(function (el, spec, opts) {
    var script = document.currentScript;
    var box = script && script.parentElement ? script.parentElement
      : typeof el === "string" ? document.querySelector(el) : el;
    return embed(box, spec, Object.assign({actions: actions}, opts)).then(function (result) {
      box.vegaView = result.view;
      return result;
    }, function (err) {
      box.textContent = "This plot failed to render: " + err;
      console.error(err);
      throw err;
    });
  }, embed);
})();"""

STYLE = """body { font-family: system-ui, sans-serif; margin: 16px; }
body > div { display: inline-block; vertical-align: top; margin: 8px;
             max-width: calc(100% - 16px); }
.vega-embed { overflow-x: auto; }
img { max-width: 100%; }"""

# The browser itself refuses any script, style sheet, font or request from elsewhere.
# 'unsafe-eval': Vega compiles its expressions with new Function(). Images come from the page's
# static/ folder (file: when opened from disk) or are data: URIs.
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
       "style-src 'unsafe-inline'; img-src 'self' file: data: blob:")


@dataclass(frozen=True)
class Library:
    name: str
    version: str
    file: str  # the tarball member the CDN URL serves (package.json's "jsdelivr")
    code: str
    license: str
    integrity: str  # npm's sha512 of the tarball, "sha512-<base64>"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.code.encode()).hexdigest()


def dvc_render_pins() -> dict[str, str]:
    """{name: version} of the CDN scripts the installed dvc-render puts on its page."""
    from dvc_render.vega import VegaRenderer

    pins = dict(re.findall(r"/npm/([a-z-]+)@([0-9][^\"'/]*)", VegaRenderer.SCRIPTS))
    missing = set(LIBRARIES) - set(pins)
    if missing:
        raise ValueError(f"dvc-render's VegaRenderer.SCRIPTS no longer names {sorted(missing)}")
    return {name: pins[name] for name in LIBRARIES}


def npm_pack(name: str, version: str, folder: Path) -> tuple[Path, str]:
    """Download ``name@version`` with the npm client: its tarball and npm's integrity."""
    out = subprocess.run(["npm", "pack", f"{name}@{version}", "--json", "--pack-destination",
                          str(folder)], capture_output=True, text=True, check=True).stdout
    (info,) = json.loads(out)
    return folder / info["filename"], info["integrity"]


def read_library(tarball: Path, name: str, version: str, integrity: str) -> Library:
    """The minified browser build and the LICENSE of an npm tarball (members under package/)."""
    with tarfile.open(tarball) as tar:
        def member(path: str) -> str:
            return tar.extractfile(f"package/{path}").read().decode("utf-8")

        package = json.loads(member("package.json"))
        if (package["name"], package["version"]) != (name, version):
            raise ValueError(f"{tarball} holds {package['name']}@{package['version']}")
        file = package["jsdelivr"]
        code, license_text = member(file), member("LICENSE")
    if "</script" in code.lower() or re.search(r"\{(plot_divs|scripts|refresh_tag)\}", code):
        raise ValueError(f"{name}'s {file} cannot be inlined unchanged")
    return Library(name, version, file, code, license_text, integrity)


def build_page(libraries: list[Library]) -> str:
    """The HTML template: DVC fills {plot_divs} and {refresh_tag}; {scripts} is left out on
    purpose, so that DVC's CDN script tags never reach the page."""
    listed = "\n".join(f"  {lib.name}@{lib.version} {lib.file} sha256={lib.sha256} "
                       f"npm={lib.integrity}" for lib in libraries)
    scripts = "\n".join(f"<script>/* {lib.name}@{lib.version} {lib.file}, BSD-3-Clause, see "
                        f".dvc/html/LICENSE-{lib.name}.txt */\n{lib.code}\n</script>"
                        for lib in libraries)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{{refresh_tag}}
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>DVC plots</title>
<!--
Sonic's page for `dvc plots show` and `dvc plots diff` (.dvc/config: plots.html_template).
Made by `python .dvc/html/build.py`: do not edit by hand. Inlined, unchanged, from
the npm tarballs of the releases that dvc-render's own page loads from a CDN:
{listed}
-->
{scripts}
<script>
{EMBED_WRAPPER}
</script>
<style>
{STYLE}
</style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def vendored(page: str) -> dict[str, dict[str, str]]:
    """{name: {"version", "file", "sha256", "integrity"}} as listed in a page's header."""
    return {m["name"]: {k: m[k] for k in ("version", "file", "sha256", "integrity")}
            for m in HEADER_LINE.finditer(page)}


def inlined(page: str) -> dict[str, str]:
    """{name: code} of the libraries inlined in a page, as ``build_page`` wrote them."""
    return {m[1]: m[2] for m in re.finditer(
        r"<script>/\* ([a-z-]+)@\S+ \S+, BSD-3-Clause, see \S+ \*/\n(.*?)\n</script>", page, re.S)}


def write_template(out_dir: Path, tarballs: Path | None = None) -> Path:
    """Fetch (or read from ``tarballs``) the releases dvc-render pins; write
    ``out_dir/plots.html`` and ``LICENSE-<name>.txt`` beside it."""
    libraries = []
    with tempfile.TemporaryDirectory(prefix="sonic-npm-") as tmp:
        for name, version in dvc_render_pins().items():
            if tarballs is None:
                tarball, integrity = npm_pack(name, version, Path(tmp))
            else:
                tarball = tarballs / f"{name}-{version}.tgz"
                digest = hashlib.sha512(tarball.read_bytes()).digest()
                integrity = "sha512-" + base64.b64encode(digest).decode()  # as npm writes it
            libraries.append(read_library(tarball, name, version, integrity))
    out_dir.mkdir(parents=True, exist_ok=True)
    for lib in libraries:
        (out_dir / f"LICENSE-{lib.name}.txt").write_text(lib.license)
    page = out_dir / "plots.html"
    page.write_text(build_page(libraries))
    return page


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rebuild .dvc/html/plots.html, the offline "
                                     "page of `dvc plots show` and `dvc plots diff`.")
    parser.add_argument("--out", type=Path, default=HTML_DIR, help="folder (default: this one, .dvc/html)")
    parser.add_argument("--tarballs", type=Path, help="read NAME-VERSION.tgz from this folder "
                        "instead of running `npm pack`")
    args = parser.parse_args(argv)
    page = write_template(args.out, args.tarballs)
    found = vendored(page.read_text())
    print(f"{page}: " + ", ".join(f"{n}@{v['version']}" for n, v in found.items()))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Re-create site/_static/vendor/ from the npm registry (run by hand when
# upgrading; the build itself never downloads anything). Needs npm and network.
#   bash site/vendor.sh
set -euo pipefail
HTML_MANAGER=1.0.15   # @jupyter-widgets/html-manager 1.x renders ipywidgets 8 (widget protocol 2)
MATHJAX=3.2.2
FONTAWESOME=5.15.4    # only its licence: the woff2 fonts come from the html-manager's dist

here="$(cd "$(dirname "$0")" && pwd)"
vendor="$here/_static/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "@jupyter-widgets/html-manager@$HTML_MANAGER" "mathjax@$MATHJAX" \
    "@fortawesome/fontawesome-free@$FONTAWESOME" >/dev/null
for f in *.tgz; do mkdir "${f%.tgz}"; tar xzf "$f" -C "${f%.tgz}"; done
hm="jupyter-widgets-html-manager-$HTML_MANAGER/package/dist"
mj="mathjax-$MATHJAX/package"

rm -rf "$vendor/jupyter-widgets" "$vendor/mathjax"
mkdir -p "$vendor/jupyter-widgets" "$vendor/mathjax/output/chtml/fonts"
# the standalone embed bundle (all built-in widgets; no require.js, no CDN loader)
cp "$hm/embed.js" "$hm/embed.js.LICENSE.txt" "$vendor/jupyter-widgets/"
# the Font Awesome 5 woff2 fonts its CSS refers to (browsers take woff2 first)
for font in $(grep -o '"[0-9a-f]\{20\}\.woff2"' "$hm/embed.js" | tr -d '"' | sort -u); do
    cp "$hm/$font" "$vendor/jupyter-widgets/"
done
cp "fortawesome-fontawesome-free-$FONTAWESOME/package/LICENSE.txt" "$vendor/jupyter-widgets/LICENSE.fontawesome.txt"
# html-manager is BSD-3-Clause (Project Jupyter); its npm package ships no LICENSE file
"${PYTHON:-$here/../.venv/bin/python}" - "$vendor/jupyter-widgets/LICENSE" <<'PY'
import importlib.metadata as md, pathlib, sys
dist = md.distribution("ipywidgets")
lic = next(f for f in dist.files if f.name == "LICENSE")
pathlib.Path(sys.argv[1]).write_text(dist.locate_file(lic).read_text())
PY
# MathJax 3: TeX input, CommonHTML output, all TeX extensions in one file, and its fonts
cp "$mj/es5/tex-chtml-full.js" "$mj/LICENSE" "$vendor/mathjax/"
cp -r "$mj/es5/output/chtml/fonts/woff-v2" "$vendor/mathjax/output/chtml/fonts/"
du -sh "$vendor"

"""Thumbnails for the app: a small HTTP endpoint (``/t/<image id>.jpg``) and the map's hover preview.

The endpoint runs in a thread of the Streamlit process (one per library, started on first use) on
the address Streamlit listens on and a free port. Each request reads the image's content hash and
file from the catalog (its own read-only connection) and answers with the thumbnail cached on disk
(:mod:`lookalike.store.thumbnails`), made on first request: the map figure carries only image ids,
and a thumbnail is made only when someone hovers over its point.

The hover preview is a few lines of JavaScript put into the page (``st.html``, trusted code of
ours, no user input): it finds the map (layout ``meta`` = :data:`MAP_META`), listens to
Plotly's hover events and shows ``/t/<id>.jpg`` beside the pointer.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import streamlit as st

HOVER_SIDE = 128
"""Longest side of hover previews, in pixels."""
MAP_META = "lookalike-map"
_PATH = re.compile(r"^/t/(\d+)\.jpg$")
QUALITY = 85


def render_thumbnail(source: Path, side: int, max_pixels: int) -> bytes:
    """JPEG bytes of ``source`` (EXIF-upright) shrunk to fit ``side`` x ``side``; raises ImageError."""
    import io

    from lookalike.io.decode import load_rgb

    image = load_rgb(source, max_pixels=max_pixels, min_side=side)
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=QUALITY)
    return buffer.getvalue()


def cached_thumbnail(folder: Path, digest: str, source: Path, side: int, max_pixels: int) -> bytes | None:
    """The thumbnail of the image with content hash ``digest`` (file ``source``) from the library's
    cache, made and cached on first use; None when ``source`` cannot be read."""
    from lookalike.errors import ImageError
    from lookalike.store.thumbnails import read_thumbnail, write_thumbnail

    data = read_thumbnail(folder, digest, side)
    if data is not None:
        return data
    try:
        data = render_thumbnail(source, side, max_pixels)
    except ImageError:
        return None
    write_thumbnail(folder, digest, side, data)
    return data


def _handler(folder: Path, max_pixels: int) -> type[BaseHTTPRequestHandler]:
    from lookalike.store.annotations import image_file
    from lookalike.store.catalog import Catalog

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            match = _PATH.match(self.path.split("?", 1)[0])
            data = None
            if match:
                catalog = Catalog(folder / "catalog.sqlite", readonly=True)
                try:
                    found = image_file(catalog, int(match.group(1)))
                finally:
                    catalog.close()
                if found is not None:
                    data = cached_thumbnail(folder, found[0], Path(found[1]), HOVER_SIDE, max_pixels)
            if data is None:
                self.send_error(404, "no such image")
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "max-age=3600")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the http.server API)
            pass  # one line per thumbnail would flood the app's log

    return Handler


@st.cache_resource(show_spinner=False)
def thumbnail_port(folder: str, max_pixels: int, host: str) -> int:
    """The port of ``folder``'s thumbnail endpoint on ``host`` (started once per process)."""
    server = ThreadingHTTPServer((host, 0), _handler(Path(folder), max_pixels))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="lookalike-thumbnails", daemon=True).start()
    return int(server.server_address[1])


def listen_address() -> str:
    """The address Streamlit serves on (thumbnails go to the same one); loopback by default."""
    address = st.get_option("server.address")
    return str(address) if address else "127.0.0.1"


_HOVER_JS = """
<script>
(() => {
  const doc = window.parent.document;
  const port = %(port)d, side = %(side)d, meta = "%(meta)s";
  let box = doc.getElementById("lookalike-hover");
  if (!box) {
    box = doc.createElement("div");
    box.id = "lookalike-hover";
    box.style.cssText = "position:fixed;z-index:100000;pointer-events:none;display:none;background:#fff;" +
      "border:1px solid #888;border-radius:4px;padding:3px;box-shadow:0 2px 8px rgba(0,0,0,.3)";
    const img = doc.createElement("img");  // built, not written as markup: the sanitizer drops scripts holding tags
    img.style.cssText = "display:block;min-width:" + side + "px";
    box.appendChild(img);
    doc.body.appendChild(box);
    // capture phase: Plotly's drag layer stops mousemove from bubbling up
    doc.addEventListener("mousemove", (e) => { box.dataset.x = e.clientX; box.dataset.y = e.clientY; }, true);
  }
  const base = window.parent.location.protocol + "//" + window.parent.location.hostname + ":" + port + "/t/";
  const show = (ev) => {
    const point = ev && ev.points && ev.points[0];
    if (!point || point.customdata === undefined) return;
    const id = Array.isArray(point.customdata) ? point.customdata[0] : point.customdata;
    const img = box.firstChild;
    const src = base + id + ".jpg";
    if (img.getAttribute("src") !== src) img.setAttribute("src", src);
    img.dataset.imageId = id;
    const mouse = ev.event && ev.event.clientX !== undefined ? ev.event : null;
    const x = mouse ? mouse.clientX : Number(box.dataset.x || 0);
    const y = mouse ? mouse.clientY : Number(box.dataset.y || 0);
    const w = window.parent.innerWidth;
    box.style.left = (x - side - 30 > 0 ? x - side - 30 : x + 30) + "px";  // left of the pointer: Plotly's label is right
    box.style.top = Math.max(0, y - side / 2) + "px";
    box.style.display = "block";
  };
  const hide = () => { box.style.display = "none"; };
  const attach = () => {
    doc.querySelectorAll(".js-plotly-plot").forEach((gd) => {
      if (gd.__lookalikeHover || !gd.layout || gd.layout.meta !== meta || !gd.on) return;
      gd.__lookalikeHover = true;
      gd.on("plotly_hover", show);
      gd.on("plotly_unhover", hide);
    });
  };
  attach();
  if (!window.parent.__lookalikeHoverTimer) {
    window.parent.__lookalikeHoverTimer = window.parent.setInterval(attach, 500);
  }
})();
</script>
"""


def hover_previews(folder: Path, max_pixels: int) -> None:
    """Show the thumbnail of the map point under the pointer (starts the endpoint when needed)."""
    port = thumbnail_port(str(folder), max_pixels, listen_address())
    st.html(_HOVER_JS % {"port": port, "side": HOVER_SIDE, "meta": MAP_META}, unsafe_allow_javascript=True)

"""Know when the Streamlit app in a Playwright tab has finished running its script.

A test that clicks while a run is still streaming elements in can lose the click (a dropdown
closes when the elements around it are replaced) or race the run it started. The app's websocket
says when a run starts and ends (``session_status_changed.script_is_running``); the tab's own
messages say when it asked for a rerun. :func:`settle` waits until the last run asked for has
finished and the page's elements stopped changing (the tab renders a run's last elements after the
run has ended).
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field

from playwright.sync_api import Page, WebSocket
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

QUIET_S = 0.5
"""How long nothing may happen before the app counts as settled."""


@dataclass
class AppRuns:
    """Script runs seen on one tab's Streamlit websocket."""

    running: bool = False
    pending: bool = False  # a rerun asked for by the tab and not yet started
    last_event: float = 0.0
    fragments: list[str] = field(default_factory=list)  # per rerun asked for: the fragment's id, "" for the whole app

    def attach(self, page: Page) -> AppRuns:
        page.on("websocket", self._watch)
        return self

    def _watch(self, socket: WebSocket) -> None:
        if not socket.url.endswith("/_stcore/stream"):
            return
        socket.on("framereceived", self._received)
        socket.on("framesent", self._sent)

    def _received(self, payload: bytes | str) -> None:
        if isinstance(payload, str):
            return
        message = ForwardMsg.FromString(payload)
        if message.WhichOneof("type") == "session_status_changed":
            self.running = message.session_status_changed.script_is_running
            self.pending = self.pending and not self.running
            self.last_event = time.monotonic()

    def _sent(self, payload: bytes | str) -> None:
        if isinstance(payload, str):
            return
        message = BackMsg.FromString(payload)
        if message.WhichOneof("type") == "rerun_script":
            self.fragments.append(message.rerun_script.fragment_id)
            self.pending = True
            self.last_event = time.monotonic()

    def idle(self) -> bool:
        return not self.running and not self.pending and time.monotonic() - self.last_event >= QUIET_S


QUIET_DOM_JS = """(quietMs) => {
  if (window.__lookalikeChanged === undefined) {
    window.__lookalikeChanged = Date.now();
    new MutationObserver(() => { window.__lookalikeChanged = Date.now(); })
      .observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
  }
  return Date.now() - window.__lookalikeChanged >= quietMs;
}"""
"""True once the page's DOM has not changed for ``quietMs`` (installs the observer on first call)."""


_WATCHED: weakref.WeakKeyDictionary[Page, AppRuns] = weakref.WeakKeyDictionary()


def watch(page: Page) -> None:
    """Follow the app's runs in ``page`` (call before the first ``goto``)."""
    _WATCHED[page] = AppRuns().attach(page)


def rerun_scopes(page: Page) -> list[str]:
    """For every rerun the tab asked for so far: the id of the fragment it reran, "" for the whole app."""
    return list(_WATCHED[page].fragments)


def settle(page: Page, timeout_s: float) -> None:
    """Wait until the app in ``page`` (see :func:`watch`) has finished every run asked for and its
    elements stopped changing (TimeoutError after ``timeout_s``)."""
    runs = _WATCHED[page]
    deadline = time.monotonic() + timeout_s
    while not (runs.idle() and page.evaluate(QUIET_DOM_JS, QUIET_S * 1000)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the app was still running after {timeout_s:.0f} s")
        page.wait_for_timeout(100)  # also lets Playwright deliver the websocket events

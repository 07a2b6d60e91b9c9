// Refreshes the board in place every few seconds: fetches this page again and swaps its
// <main>, so nothing flickers and the scroll position stays. Without JavaScript the page
// refreshes itself instead (a <noscript> meta refresh).
"use strict";
(function () {
  const first = document.getElementById("board");
  const every = 1000 * Number(first ? first.dataset.refresh : 0);
  if (!every) {
    return;
  }
  async function refresh() {
    try {
      const response = await fetch(window.location.href, { cache: "no-store" });
      if (response.ok) {
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.getElementById("board");
        const board = document.getElementById("board");
        if (fresh && board) {
          board.replaceWith(document.adoptNode(fresh));
        }
      }
    } catch (error) {
      // The console is restarting or the network is down: try again next time.
    }
    window.setTimeout(refresh, every);
  }
  window.setTimeout(refresh, every);
})();

// How old the newest update on a live page is, counted in the browser (veles_ui/components/freshness.py).
//
// Each element marked data-freshness carries the stamp of the update the page shows now. This
// script notes when the stamp last changed and, ten times a second, writes "updated 0.3 s ago"
// into it: gray while fresh, amber past 2 s, red past 10 s. It needs no socket event to do so,
// so a page whose socket is dead, or whose engine stopped, keeps ageing on screen instead of
// showing its last figures as if they were live. Elements marked data-offline-notice are shown
// while the browser says it is offline (the socket itself notices a dead link only at its next
// ping timeout, which is tens of seconds later).
(() => {
  const AMBER_S = 2;
  const RED_S = 10;
  const COLORS = { fresh: "var(--gray-11)", amber: "var(--amber-11)", red: "var(--red-11)" };
  const seen = new WeakMap();

  const age = (seconds) => (seconds < 10 ? seconds.toFixed(1) : Math.round(seconds).toString());

  function tick() {
    const now = performance.now();
    for (const el of document.querySelectorAll("[data-freshness]")) {
      const stamp = el.getAttribute("data-freshness") || "";
      let entry = seen.get(el);
      if (entry === undefined || entry.stamp !== stamp) {
        entry = { stamp, at: now };
        seen.set(el, entry);
      }
      const seconds = (now - entry.at) / 1000;
      const level = seconds > RED_S ? "red" : seconds > AMBER_S ? "amber" : "fresh";
      const text = stamp ? `updated ${age(seconds)} s ago` : `no update for ${age(seconds)} s`;
      if (el.textContent !== text) el.textContent = text;
      if (el.dataset.level !== level) {
        el.dataset.level = level;
        el.style.color = COLORS[level];
      }
    }
    for (const el of document.querySelectorAll("[data-offline-notice]")) {
      const hidden = navigator.onLine;
      if (el.hidden !== hidden) el.hidden = hidden;
    }
  }

  if (!window.velesFreshness) {
    window.velesFreshness = setInterval(tick, 100);
  }
})();

// The dashboard's margin-call sound (veles_ui/components/margin_sound.py).
//
// The page renders a hidden #margin-alarm whose data-seq counts the times an account entered
// margin call while the tab watched (the server counts each entry once). Four times a second this
// script compares it with the count it saw last and rings once when it moved: a short two-tone
// beep made with Web Audio, no sound file. The count the page had when it opened is not news.
//
// Muted by default: #sound-toggle turns it on (and off) and the choice is kept in localStorage.
// Browsers let a page make sound only after a user gesture on it (the autoplay policy), so the
// audio is started by that click; after a reload the preference stays on but the browser holds the
// sound back until the next click or key press on the page, and the button says so rather than
// pretending. window.__velesMarginSound counts rings played and rings held back (tests read it).
(() => {
  const KEY = "veles.marginSound";
  const state = (window.__velesMarginSound = { played: 0, blocked: 0, seen: null });
  let audio = null;

  const enabled = () => localStorage.getItem(KEY) === "on";
  const running = () => audio !== null && audio.state === "running";

  function unlock() {
    // only ever called from a user gesture's handler: what the autoplay policy asks for
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (audio === null) audio = new Context();
    if (audio.state !== "running") audio.resume().then(label, label);
  }

  function beep() {
    const now = audio.currentTime;
    for (const [at, hz] of [[0, 880], [0.16, 660]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = hz;
      gain.gain.setValueAtTime(0.0001, now + at);
      gain.gain.exponentialRampToValueAtTime(0.25, now + at + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + at + 0.14);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + at);
      osc.stop(now + at + 0.15);
    }
  }

  function label() {
    const el = document.getElementById("sound-label");
    if (!el) return;
    const text = !enabled()
      ? "Sound off (muted by default)"
      : running()
        ? "Sound on"
        : "Sound on: click the page to let the browser play it";
    if (el.textContent !== text) el.textContent = text;
    const button = document.getElementById("sound-toggle");
    if (button) button.setAttribute("aria-pressed", enabled() ? "true" : "false");
  }

  function tick() {
    const alarm = document.getElementById("margin-alarm");
    label();
    if (!alarm) {
      state.seen = null; // left the dashboard: its next visit starts a new baseline
      return;
    }
    const seq = Number(alarm.getAttribute("data-seq") || "0");
    if (state.seen === null || seq < state.seen) {
      state.seen = seq; // the count the page opened with (or a new stream's): not news
      return;
    }
    if (seq === state.seen) return;
    state.seen = seq;
    if (!enabled()) return;
    if (running()) {
      beep();
      state.played += 1;
    } else {
      state.blocked += 1;
    }
  }

  document.addEventListener("click", (event) => {
    if (event.target instanceof Element && event.target.closest("#sound-toggle")) {
      localStorage.setItem(KEY, enabled() ? "off" : "on");
      if (enabled()) unlock();
      label();
    } else if (enabled() && !running()) {
      unlock(); // any click on the page lets the browser play the sound the dealer turned on
    }
  }, true);
  document.addEventListener("keydown", () => { if (enabled() && !running()) unlock(); }, true);
  setInterval(tick, 250);
})();

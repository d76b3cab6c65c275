// The dashboard's own script (an ES module; the CSP allows no inline script).
// Everything here is an enhancement: every page works without it.
//
// - forms with data-confirm ask first, then submit with confirmed=yes (without JS
//   the server answers with a confirmation page instead);
// - elements with data-sse="<url>" show a live stream: each event's data is one
//   line appended as text (never HTML) to their [data-sse-lines] child;
//   data-sse-events lists the event names to listen to (default: message);
//   data-sse-end names events that end the stream; data-sse-reset empties the
//   server-rendered lines when the stream opens (it replays them);
//   data-sse-reload reloads the page when the stream ends;
// - [data-stats-chart="<url>"] polls the app's stats JSON and draws CPU and memory
//   with uPlot (loaded by the stats page);
// - an element with data-events="<org events stream>" and data-events-types="a.b c.d"
//   gets a "gakwaya-event" DOM event (its htmx hx-trigger) when one of those events
//   arrives; data-events-app limits them to one app (payload.app_id);
// - buttons with data-copy="<text>" copy it to the clipboard;
// - elements with data-refresh="<seconds>" and data-refresh-url reload their
//   content (a fragment) periodically, when htmx is there;
// - links drawn as buttons (role="button") follow Space as a button does (Enter
//   works without us): a keyboard user takes them for buttons.

const MAX_LINES = 5000;

function onConfirm(event) {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  if (form.querySelector('input[name="confirmed"]')) return;
  if (!window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  const input = document.createElement("input");
  input.type = "hidden";
  input.name = "confirmed";
  input.value = "yes";
  form.appendChild(input);
}

function appendLine(target, text, kind) {
  const line = document.createElement("span");
  line.className = kind ? `line line-${kind}` : "line";
  line.textContent = text.endsWith("\n") ? text : `${text}\n`;
  const stick = target.scrollTop + target.clientHeight >= target.scrollHeight - 8;
  target.appendChild(line);
  while (target.childNodes.length > MAX_LINES) target.removeChild(target.firstChild);
  if (stick) target.scrollTop = target.scrollHeight;
}

function startStream(el) {
  if (el.dataset.sseStarted) return;
  el.dataset.sseStarted = "1";
  const target = el.querySelector("[data-sse-lines]") || el;
  const status = el.querySelector("[data-sse-status]");
  const events = (el.dataset.sseEvents || "message").split(/\s+/).filter(Boolean);
  const ends = (el.dataset.sseEnd || "").split(/\s+/).filter(Boolean);
  const source = new EventSource(el.dataset.sse, { withCredentials: true });
  const setStatus = (text) => { if (status) status.textContent = text; };
  let opened = false;
  source.onopen = () => {
    if (!opened && el.hasAttribute("data-sse-reset")) target.replaceChildren();
    opened = true;
    setStatus("Live");
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) setStatus("Disconnected: reload the page to resume");
    else setStatus("Reconnecting…");
  };
  for (const name of events) {
    source.addEventListener(name, (event) => appendLine(target, event.data, name === "message" || name === "log" ? "" : name));
  }
  for (const name of ends) {
    source.addEventListener(name, (event) => {
      if (event.data) appendLine(target, `— ${event.data} —`, event.data);
      source.close();
      setStatus("Finished");
      if (el.hasAttribute("data-sse-reload")) window.setTimeout(() => window.location.reload(), 800);
    });
  }
}

function onCopy(event) {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  navigator.clipboard?.writeText(button.dataset.copy).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    window.setTimeout(() => { button.textContent = label; }, 1500);
  });
}

function onSpace(event) {
  if (event.key !== " " || event.repeat || event.defaultPrevented) return;
  if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
  const link = event.target instanceof Element ? event.target.closest('a[role="button"][href]') : null;
  if (!link) return;
  event.preventDefault(); // not a page scroll
  link.click();
}

function startEvents(el) {
  if (el.dataset.eventsStarted) return;
  el.dataset.eventsStarted = "1";
  const source = new EventSource(el.dataset.events, { withCredentials: true });
  const app = el.dataset.eventsApp;
  let timer = 0;
  const fire = (event) => {
    if (app) {
      try {
        const payload = JSON.parse(event.data).payload || {};
        if (payload.app_id !== undefined && String(payload.app_id) !== app) return;
      } catch {
        return;
      }
    }
    // Several events arrive together around a deployment: one refresh for them.
    window.clearTimeout(timer);
    timer = window.setTimeout(() => el.dispatchEvent(new CustomEvent("gakwaya-event")), 250);
  };
  for (const name of (el.dataset.eventsTypes || "").split(/\s+/).filter(Boolean)) {
    source.addEventListener(name, fire);
  }
}

const CHART_POINTS = 120;

function startChart(el) {
  if (el.dataset.chartStarted || typeof window.uPlot !== "function") return;
  el.dataset.chartStarted = "1";
  const data = [[], [], []];
  const width = () => Math.max(280, el.clientWidth);
  const plot = new window.uPlot(
    {
      width: width(),
      height: 220,
      series: [
        {},
        { label: "CPU %", stroke: "#1e88e5", scale: "%" },
        { label: "Memory MiB", stroke: "#8e24aa", scale: "mb" },
      ],
      axes: [{}, { scale: "%" }, { scale: "mb", side: 1, grid: { show: false } }],
    },
    data,
    el,
  );
  window.addEventListener("resize", () => plot.setSize({ width: width(), height: 220 }));
  const sample = async () => {
    try {
      const response = await fetch(el.dataset.statsChart, { headers: { accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const rows = await response.json();
      let cpu = 0;
      let memory = 0;
      for (const row of rows) {
        cpu += row.cpu_percent || 0;
        memory += (row.memory_bytes || 0) / 1048576;
      }
      data[0].push(Date.now() / 1000);
      data[1].push(cpu);
      data[2].push(memory);
      for (const series of data) if (series.length > CHART_POINTS) series.shift();
      plot.setData(data);
    } catch {
      // The next sample tries again.
    }
  };
  sample();
  window.setInterval(sample, 5000);
}

function init(root) {
  for (const el of root.querySelectorAll("[data-sse]")) startStream(el);
  for (const el of root.querySelectorAll("[data-stats-chart]")) startChart(el);
  for (const el of root.querySelectorAll("[data-events]")) startEvents(el);
  for (const el of root.querySelectorAll("[data-copy]")) el.hidden = false;
}

document.addEventListener("submit", onConfirm, true);
document.addEventListener("click", onCopy);
document.addEventListener("keydown", onSpace);
document.addEventListener("htmx:load", (event) => init(event.target));
// Modules run after the document is parsed, but deferred classic scripts (uPlot)
// may run after us: wait for "load" before drawing charts.
init(document);
window.addEventListener("load", () => init(document));

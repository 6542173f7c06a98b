// trimtab console: local times, sortable tables, charts (uPlot), live rollout pages. No build step.
"use strict";

function localTimes(root) {
  const fmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });
  for (const el of (root || document).querySelectorAll("time[datetime]:not([title])")) {
    const at = new Date(el.getAttribute("datetime"));
    if (!isNaN(at)) { el.title = el.textContent; el.textContent = fmt.format(at); }
  }
}

function sortable() {
  for (const table of document.querySelectorAll("table.sortable")) {
    const heads = table.querySelectorAll("thead th");
    heads.forEach((th, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = th.textContent;
      th.textContent = "";
      th.appendChild(button);
      button.addEventListener("click", () => {
        const asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        const numeric = th.dataset.type === "num";
        const body = table.tBodies[0];
        const rows = Array.from(body.rows).filter((r) => r.cells.length > index);
        const key = (row) => {
          const cell = row.cells[index];
          const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
          return numeric ? parseFloat(raw) || 0 : raw.toLowerCase();
        };
        rows.sort((a, b) => {
          const x = key(a), y = key(b);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach((r) => body.appendChild(r));
      });
    });
  }
}

function draw(el, t, values, unit) {
  const width = Math.max(280, el.clientWidth || 560);
  const opts = {
    width: width, height: 200,
    scales: { x: { time: true } },
    series: [{}, { label: unit, stroke: "#0b57d0", fill: "rgba(11,87,208,0.12)", width: 1.5,
      spanGaps: false }],
    axes: [{}, { size: 60 }],
    legend: { show: true },
  };
  el.textContent = "";
  if (!t.length) { el.textContent = "No data in this window."; return; }
  new uPlot(opts, [t, values], el);
}

function charts() {
  if (typeof uPlot === "undefined") { return; }
  for (const el of document.querySelectorAll(".chart[data-inline]")) {
    const source = document.getElementById(el.dataset.inline);
    const data = JSON.parse(source.textContent);
    draw(el, data.t, data[el.dataset.metric], el.dataset.unit);
  }
  for (const box of document.querySelectorAll("[data-series]")) {
    fetch(box.dataset.series, { credentials: "same-origin", headers: { accept: "application/json" } })
      .then((r) => r.ok ? r.json() : Promise.reject(new Error("series: HTTP " + r.status)))
      .then((data) => {
        for (const el of box.querySelectorAll(".chart[data-metric]")) {
          draw(el, data.t, data[el.dataset.metric], el.dataset.unit);
        }
      })
      .catch((err) => { box.dataset.error = String(err); box.prepend(document.createTextNode("Charts unavailable: " + err.message)); });
  }
}

// The explorer's next page by its cursor, appended as the reader scrolls near the end (the
// "Older" link stays a plain link without the script, and after the last page is gone).
function infiniteScroll() {
  const table = document.querySelector("table[data-scroll]");
  const next = document.querySelector("a[data-testid=next-page]");
  if (!table || !next || !("IntersectionObserver" in window)) { return; }
  let busy = false;
  const observer = new IntersectionObserver((entries) => {
    if (busy || !entries.some((e) => e.isIntersecting)) { return; }
    const link = document.querySelector("a[data-testid=next-page]");
    if (!link) { observer.disconnect(); return; }
    busy = true;
    fetch(link.href, { credentials: "same-origin" })
      .then((r) => r.ok ? r.text() : Promise.reject(new Error("HTTP " + r.status)))
      .then((html) => {
        const doc = new DOMParser().parseFromString(html, "text/html");
        const rows = doc.querySelectorAll("table[data-scroll] tbody tr:not(.empty)");
        const body = table.tBodies[0];
        for (const row of rows) { body.appendChild(document.importNode(row, true)); }
        localTimes(body);
        const more = doc.querySelector("a[data-testid=next-page]");
        busy = false;
        if (more) {
          link.href = more.getAttribute("href");
          observer.unobserve(link);  // observing again reports at once if it is still in view
          observer.observe(link);
        } else { link.remove(); observer.disconnect(); }
      })
      .catch((err) => { link.textContent = "Older (could not load: " + err.message + ")"; });
  }, { rootMargin: "200px" });
  observer.observe(next);
}

// A running rollout's page: every data-live seconds, the page is read again and its live
// part (status, stage, split, the latest decision and its metrics) replaced; the forms are
// not touched, so a reason being typed stays. It stops once the rollout has ended.
function live() {
  const el = document.getElementById("live");
  if (!el || !el.dataset.live) { return; }
  const every = Math.max(1, parseFloat(el.dataset.live) || 5) * 1000;
  const tick = () => {
    fetch(location.href, { credentials: "same-origin", headers: { accept: "text/html" } })
      .then((r) => r.ok ? r.text() : Promise.reject(new Error("HTTP " + r.status)))
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (!fresh) { return; }
        el.innerHTML = fresh.innerHTML;
        localTimes(el);
        if (fresh.dataset.live) { setTimeout(tick, every); } else { delete el.dataset.live; }
      })
      .catch(() => { setTimeout(tick, every * 2); });  // the server away: try again later
  };
  setTimeout(tick, every);
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(); sortable(); charts(); infiniteScroll(); live();
});

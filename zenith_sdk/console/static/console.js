// The console's browser side: JSON changes with the cross-site token, the confirmation dialog,
// job selection and bulk actions, charts, the archive search and the live log tail.
// Every URL comes from a data-* attribute the server rendered from the console's mount.
"use strict";

(() => {
  const csrf = () => document.querySelector('meta[name="zenith-csrf"]').content;

  async function send(url, body, method = "POST") {
    const init = { method, headers: { "X-Zenith-CSRF": csrf() }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const reply = await fetch(url, init);
    const text = await reply.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!reply.ok) {
      const failure = new Error((data && data.error) || `${reply.status} ${reply.statusText}`);
      failure.status = reply.status;
      throw failure;
    }
    return data;
  }

  // -- the confirmation dialog: ask, then run `work` with the dialog in its loading state --------
  const dialog = () => document.getElementById("confirm");

  function confirmThen(message, work) {
    const box = dialog();
    const ok = document.getElementById("confirm-ok");
    const error = document.getElementById("confirm-error");
    document.getElementById("confirm-text").textContent = message;
    error.textContent = "";
    ok.disabled = false;
    ok.textContent = "Confirm";
    box.removeAttribute("aria-busy");
    ok.onclick = async (event) => {
      event.preventDefault();
      ok.disabled = true;
      ok.textContent = "Working…";
      box.setAttribute("aria-busy", "true");
      try {
        await work();
        box.close("done");
        location.reload();
      } catch (failure) {
        error.textContent = failure.message;
        ok.disabled = false;
        ok.textContent = "Try again";
        box.removeAttribute("aria-busy");
      }
    };
    box.showModal();
  }

  // -- buttons with data-post and forms with data-post -------------------------------------------
  function onActionButton(button) {
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    const work = () => send(button.dataset.post, body, button.dataset.method || "POST");
    if (button.dataset.confirm) return confirmThen(button.dataset.confirm, work);
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    work().then(() => location.reload(), (failure) => {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      button.title = failure.message;
      alert(failure.message);
    });
  }

  function formBody(form) {
    const body = {};
    for (const input of form.querySelectorAll("input[name], select[name], textarea[name]")) {
      if (input.value === "") continue;
      let value = input.value;
      if (input.type === "number") value = Number(value) * Number(input.dataset.scale || 1);
      if ("json" in input.dataset) value = JSON.parse(value);
      const path = input.name.split(".");
      let at = body;
      for (const part of path.slice(0, -1)) at = at[part] = at[part] || {};
      at[path[path.length - 1]] = value;
    }
    return body;
  }

  async function onActionForm(form) {
    const error = form.querySelector("[data-form-error]");
    const submit = form.querySelector('[type="submit"]');
    submit.disabled = true;
    try {
      await send(form.dataset.post, formBody(form), form.dataset.method || "POST");
      if (form.dataset.then) location.assign(form.dataset.then);  // where to go once it is done
      else location.reload();
    } catch (failure) {
      if (error) error.textContent = failure.message;
      submit.disabled = false;
    }
  }

  // -- job selection and bulk actions (the queue page) -------------------------------------------
  const ACTION_WORDS = { retry: "Retry", delete: "Delete", promote: "Run now" };

  function bulkParts(area) {
    const picks = [...area.querySelectorAll("input.pick")];
    return { picks, chosen: picks.filter((box) => box.checked).map((box) => box.value) };
  }

  function refreshSelection(area) {
    const { picks, chosen } = bulkParts(area);
    area.querySelector("[data-selected]").textContent = String(chosen.length);
    for (const button of area.querySelectorAll("[data-bulk-action]")) button.disabled = chosen.length === 0;
    const page = area.querySelector("input.pick-page");
    if (page) page.checked = picks.length > 0 && chosen.length === picks.length;
  }

  function selectAll(area, checked) {
    for (const box of bulkParts(area).picks) box.checked = checked;
    refreshSelection(area);
  }

  function bulkSelected(area, action) {
    const { chosen } = bulkParts(area);
    const { bulkUrl, state, queue } = area.dataset;
    const message = `${ACTION_WORDS[action]} ${chosen.length} selected ${state} job(s) of ${queue}?`;
    confirmThen(message, () => send(bulkUrl, { state, action, ids: chosen }));
  }

  async function bulkMatching(area, action, button) {
    const { bulkUrl, state, queue, query } = area.dataset;
    const base = { state, action, ...(query ? { query } : {}) };
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      const count = await send(bulkUrl, { ...base, dryRun: true });
      const which = query ? `matching “${query}”` : "";
      confirmThen(`${ACTION_WORDS[action]} all ${count.matched} ${state} job(s) of ${queue} ${which}?`,
        () => send(bulkUrl, base));
    } catch (failure) {
      alert(failure.message);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  function onKey(event) {
    const area = document.querySelector("[data-bulk-url]");
    const typing = event.target.closest && event.target.closest("input:not(.pick):not(.pick-page), textarea, select");
    if (area && !typing && (event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "a") {
      event.preventDefault();
      selectAll(area, true);
    } else if (event.key === "Escape" && area && !dialog().open) {
      selectAll(area, false);
    }
  }

  // -- clicks, submits and changes, delegated from the document ----------------------------------
  document.addEventListener("click", (event) => {
    const target = event.target.closest("button");
    if (!target) return;
    const area = target.closest("[data-bulk-url]");
    if (target.dataset.post) onActionButton(target);
    else if (area && target.dataset.bulkAction) bulkSelected(area, target.dataset.bulkAction);
    else if (area && target.dataset.bulkAll) bulkMatching(area, target.dataset.bulkAll, target);
  });
  document.addEventListener("submit", (event) => {
    if (!event.target.dataset.post) return;
    event.preventDefault();
    onActionForm(event.target);
  });
  document.addEventListener("change", (event) => {
    const area = event.target.closest("[data-bulk-url]");
    if (!area) return;
    if (event.target.classList.contains("pick-page")) selectAll(area, event.target.checked);
    else refreshSelection(area);
  });
  document.addEventListener("keydown", onKey);

  // -- charts (the overview) ---------------------------------------------------------------------
  async function drawCharts(section) {
    if (!window.uPlot) return;
    const history = await send(section.dataset.historyUrl, undefined, "GET");
    const times = history.throughput.map((point) => point.at / 1000);
    const chart = section.querySelector('[data-chart="throughput"]');
    chart.replaceChildren();
    new uPlot({ width: chart.clientWidth || 600, height: 180, series: [{}, { label: "jobs/min", stroke: "#3559e0",
      fill: "rgba(53,89,224,.1)" }], axes: [{}, {}] }, [times, history.throughput.map((point) => point.value)], chart);
    for (const spark of section.querySelectorAll("[data-spark]")) {
      const series = history[spark.dataset.spark];
      spark.replaceChildren();
      // From zero, with a dot on every sample: the first minutes of a console have a single sample or two.
      new uPlot({ width: spark.clientWidth || 200, height: 50, legend: { show: false }, cursor: { show: false },
        scales: { y: { range: (_plot, _min, max) => [0, Math.max(1, max || 0) * 1.1] } },
        axes: [{ show: false }, { show: false }],
        series: [{}, { stroke: "#667085", spanGaps: true, points: { show: true, size: 3 } }] },
      [series.map((point) => point.at / 1000), series.map((point) => point.value)], spark);
    }
    section.dataset.drawn = "true";
  }

  // -- archive search ----------------------------------------------------------------------------
  // A moment as the pages write it: 2026-01-31 12:00:00 UTC.
  const utc = (ms) => `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} UTC`;

  function cell(row, text) {
    const td = row.insertCell();
    td.textContent = text == null ? "" : String(text);
    return td;
  }

  // One page of archived jobs; `after` is the keyset key of the page before (the "More" button).
  async function archiveSearch(area, after) {
    const status = area.querySelector("[data-archive-status]");
    const more = area.querySelector("[data-archive-more]");
    const query = { q: area.dataset.query };
    if (after) query.after = after;
    more.disabled = true;
    try {
      const page = await send(`${area.dataset.archiveSearch}?${new URLSearchParams(query)}`, undefined, "GET");
      const body = area.querySelector("tbody");
      for (const job of page.jobs) {
        const row = body.insertRow();
        const link = document.createElement("a");
        link.href = area.dataset.jobUrl.replace("__queue__", encodeURIComponent(job.queue))
          .replace("__job__", encodeURIComponent(job.jobId));
        const id = document.createElement("code");
        id.textContent = job.jobId;
        link.append(id);
        row.insertCell().append(link);
        for (const value of [job.name, job.queue, job.state, job.attempts]) cell(row, value);
        cell(row, job.updatedAt ? utc(job.updatedAt) : "").className = "moment";
        cell(row, job.error).className = "error-text";
      }
      const shown = body.rows.length;
      area.querySelector("table").hidden = shown === 0;
      const total = `${page.total.n}${page.total.capped ? "+" : ""}`;
      const what = area.dataset.query ? "archived job(s) match" : "archived job(s), the most recently archived first";
      const none = area.dataset.query ? "No archived job matches." : "The archive holds no job yet.";
      status.textContent = shown ? `${total} ${what}; ${shown} shown` : none;
      more.hidden = !page.next;
      more.onclick = () => archiveSearch(area, page.next);
    } catch (failure) {
      const missing = failure.status === 404 && area.querySelector("[data-archive-missing]");
      if (missing) {
        missing.hidden = false;
        status.hidden = true;
        return;
      }
      status.textContent = failure.message;
      status.className = "error-text";
    } finally {
      more.disabled = false;
    }
  }

  // -- live log tail -----------------------------------------------------------------------------
  function logLine(list, line) {
    const item = document.createElement("li");
    item.className = `level-${line.level || "unknown"}`;
    const when = document.createElement("time");
    const at = line.timestamp ? new Date(line.timestamp) : null;
    if (at && !Number.isNaN(at.getTime())) {
      when.dateTime = at.toISOString();
      when.title = utc(at.getTime());
      when.textContent = at.toISOString().slice(11, 23);  // the time of day in UTC, to the millisecond
    } else {
      when.textContent = line.timestamp || "";
    }
    item.append(when, ` ${line.level || "?"} `, line.valid === false ? line.raw : line.message || "");
    if (line.workerId) item.append(` · ${line.workerId}`);
    list.prepend(item);
    while (list.children.length > 500) list.lastElementChild.remove();
    document.querySelector("[data-log-empty]")?.remove();
  }

  function tailLogs(list) {
    const status = document.querySelector("[data-log-status]");
    let paused = false;
    document.querySelector("[data-log-pause]").addEventListener("click", (event) => {
      paused = !paused;
      event.target.textContent = paused ? "Resume" : "Pause";
    });
    if (list.dataset.logHistory) {
      send(list.dataset.logHistory, undefined, "GET").then((lines) => lines.reverse().forEach((l) => logLine(list, l)),
        () => {});
    }
    const source = new EventSource(list.dataset.logStream);
    source.addEventListener("open", () => { status.textContent = "live"; });
    source.addEventListener("log", (event) => { if (!paused) logLine(list, JSON.parse(event.data)); });
    source.addEventListener("error", () => { status.textContent = "reconnecting…"; });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const charts = document.querySelector("[data-history-url]");
    if (charts) {
      drawCharts(charts).catch(() => {});
      setInterval(() => drawCharts(charts).catch(() => {}), 60_000);
    }
    const archive = document.querySelector("[data-archive-search]");
    if (archive) archiveSearch(archive);
    const logs = document.querySelector("[data-log-stream]");
    if (logs) tailLogs(logs);
    document.querySelectorAll("[data-bulk-url]").forEach(refreshSelection);
  });
})();

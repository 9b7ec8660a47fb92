// The /reports page: reads GET /api/v1/reports/{daily,technicians,teams} and draws each
// daily chart with uPlot (web/static/vendor/uplot), a table with the same numbers under
// it, and the per-technician and per-team tables. No build step.
(function () {
  "use strict";
  const root = document.getElementById("reports");
  if (!root) return;
  const S = JSON.parse(root.dataset.strings);
  const admin = root.dataset.admin === "1";
  const lang = root.dataset.lang || "en";
  const form = document.getElementById("reports-filters");
  const error = document.getElementById("reports-error");
  const charts = {};
  const COLORS = ["#2a6fdb", "#1b8a3a", "#b5651d", "#8e44ad"];
  const CHARTS = {
    sessions: { figures: ["started", "joined", "ended", "handed_over"], counts: true },
    times: { figures: ["join_seconds", "first_response_seconds", "handling_seconds",
                       "queue_wait_seconds"] },
    requests: { figures: ["requests", "breaches"], counts: true },
    survey: { figures: ["rating", "solved_share"], second: "solved_share" },
  };
  const TABLE = ["started", "joined", "ended", "handed_over", "first_response_seconds",
                 "handling_seconds", "queue_wait_seconds", "requests", "breaches", "surveys",
                 "rating", "solved_share", "closings", "resolved_share"];
  const number = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });

  function value(row, name) {
    const v = row[name];
    if (v === null || v === undefined) return null;
    if (name.endsWith("_seconds")) return v / 60;
    if (name === "solved_share" || name === "resolved_share") return v * 100;
    return v;
  }

  function shown(row, name) {
    const v = value(row, name);
    return v === null ? "–" : number.format(v);
  }

  function heading(name) {
    return name.endsWith("_seconds") ? S[name] + " (" + S.minutes + ")" : S[name];
  }

  function fillTable(table, keyName, rows, figures, keyOf) {
    const head = document.createElement("tr");
    for (const name of [keyName, ...figures]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = name === keyName ? S[keyName] : heading(name);
      head.append(th);
    }
    table.tHead.replaceChildren(head);
    const body = rows.map((row) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = keyOf(row);
      tr.append(th);
      for (const name of figures) {
        const td = document.createElement("td");
        td.textContent = shown(row, name);
        tr.append(td);
      }
      return tr;
    });
    if (!body.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = figures.length + 1;
      td.textContent = S.empty;
      tr.append(td);
      body.push(tr);
    }
    table.tBodies[0].replaceChildren(...body);
  }

  function dayLabel(day) {
    return new Date(day + "T00:00:00Z").toLocaleDateString(lang, {
      timeZone: "UTC", day: "numeric", month: "short" });
  }

  function draw(name, rows) {
    const block = root.querySelector('[data-chart="' + name + '"]');
    const spec = CHARTS[name];
    const box = block.querySelector(".report-chart");
    const xs = rows.map((row) => Date.parse(row.day + "T00:00:00Z") / 1000);
    const data = [xs, ...spec.figures.map((f) => rows.map((row) => value(row, f)))];
    const width = Math.max(260, box.getBoundingClientRect().width || root.clientWidth - 32);
    const series = [{}, ...spec.figures.map((f, i) => ({
      label: S[f], stroke: COLORS[i], width: 2, spanGaps: true,
      scale: f === spec.second ? "share" : "y",
      points: { show: rows.length <= 62, size: 5, fill: COLORS[i] },
      value: (u, v) => (v === null || v === undefined ? "–" : number.format(v)),
    }))];
    const options = {
      width, height: width < 500 ? 200 : 240,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      series,
      scales: {
        x: { time: true },
        // A rating is 1 to 5; the solved share (in %) has an axis of its own, on the right.
        y: { range: (u, min, max) => [0, spec.second ? 5 : Math.max(max, 1)] },
        share: { range: [0, 100] },
      },
      axes: [
        { values: (u, ticks) => ticks.map((t) => dayLabel(new Date(t * 1000)
          .toISOString().slice(0, 10))) },
        { size: 44, incrs: spec.counts || spec.second ? [1, 2, 5, 10, 20, 50, 100, 200, 500,
                                                        1000, 2000, 5000, 10000] : undefined },
        ...(spec.second ? [{ scale: "share", side: 1, size: 56, grid: { show: false },
                             values: (u, ticks) => ticks.map((t) => t + " %") }] : []),
      ],
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
    };
    if (charts[name]) charts[name].destroy();
    box.replaceChildren();
    charts[name] = new uPlot(options, data, box);
    fillTable(block.querySelector(".report-table"), "day", rows, spec.figures, (row) => dayLabel(row.day));
  }

  function query() {
    const params = new URLSearchParams();
    for (const [key, v] of new FormData(form)) if (v) params.set(key, v);
    return params;
  }

  async function load(path, params) {
    const response = await fetch("/api/v1/reports/" + path + "?" + params,
                                 { credentials: "same-origin" });
    if (!response.ok) throw new Error(String(response.status));
    return response.json();
  }

  function csvLink(id, path, params) {
    const link = document.getElementById(id);
    if (!link) return;
    const csv = new URLSearchParams(params);
    csv.set("format", "csv");
    link.href = "/api/v1/reports/" + path + "?" + csv;
  }

  async function refresh() {
    error.hidden = true;
    const params = query();
    try {
      const daily = await load("daily", params);
      form.elements.from.value = daily.from;
      form.elements.to.value = daily.to;
      document.getElementById("reports-zone").textContent = "(" + daily.time_zone + ")";
      for (const name of Object.keys(CHARTS)) draw(name, daily.rows);
      csvLink("csv-daily", "daily", params);
      const people = await load("technicians", params);
      fillTable(root.querySelector('[data-table="technicians"] .report-table'), "technician",
                people.rows, TABLE, (row) => row.technician === null ? S.nobody : row.technician);
      csvLink("csv-technicians", "technicians", params);
      const categories = await load("categories", params);
      fillTable(root.querySelector('[data-table="categories"] .report-table'), "category",
                categories.rows, ["sessions", "resolved_share"], (row) => row.category === null
                  ? S.no_category : (row.label && (row.label[lang] || Object.values(row.label)[0])) || row.category);
      if (admin) {
        const teamParams = new URLSearchParams(params);
        teamParams.delete("team_id");
        teamParams.delete("technician_id");
        const teams = await load("teams", teamParams);
        fillTable(root.querySelector('[data-table="teams"] .report-table'), "team", teams.rows, TABLE,
                  (row) => row.team);
        csvLink("csv-teams", "teams", teamParams);
      }
      root.dataset.loaded = "1";
    } catch (e) {
      console.error("report", e);
      error.textContent = S.failed;
      error.hidden = false;
    }
  }

  async function choices() {
    if (!admin) return;
    const fill = async (url, name, key, label) => {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const select = form.elements[name];
      for (const item of (await response.json())[key]) {
        const option = document.createElement("option");
        option.value = item.id;
        option.textContent = item[label];
        select.append(option);
      }
    };
    await Promise.all([fill("/api/v1/teams", "team_id", "teams", "name"),
                       fill("/api/v1/technicians", "technician_id", "technicians", "name")]);
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  let resized = null;
  window.addEventListener("resize", () => {
    clearTimeout(resized);
    resized = setTimeout(() => {
      for (const [name, chart] of Object.entries(charts)) {
        const box = root.querySelector('[data-chart="' + name + '"] .report-chart');
        chart.setSize({ width: Math.max(260, box.getBoundingClientRect().width),
                       height: chart.height });
      }
    }, 150);
  });
  choices().finally(refresh);
})();

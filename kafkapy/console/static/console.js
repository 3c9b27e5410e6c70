// The console's own script: filtering and sorting tables (both kept in the page's URL, so
// that it can be shared as shown), the typed confirmation of a deletion, submitting the
// browse form when the value format changes, and the live tail.
"use strict";

const MAX_TAIL_ROWS = 500; // what a page open for hours keeps of the tail

function filterTables() {
  for (const input of document.querySelectorAll("input[data-filter-table]")) {
    const table = document.getElementById(input.dataset.filterTable);
    if (!table) continue;
    const apply = () => {
      const wanted = input.value.trim().toLowerCase();
      let shown = 0;
      for (const row of table.tBodies[0].rows) {
        row.hidden = wanted !== "" && !row.textContent.toLowerCase().includes(wanted);
        shown += row.hidden ? 0 : 1;
      }
      const none = document.getElementById("no-match");
      if (none) none.hidden = shown > 0;
    };
    input.addEventListener("input", () => {
      apply();
      if (input.dataset.urlParam) remember(input.dataset.urlParam, input.value.trim());
    });
    apply();
  }
}

// The page's URL with a parameter changed, in place (no new history entry); the notice
// of a change just made is not part of what is shared.
function remember(param, value) {
  const url = new URL(window.location.href);
  if (value) url.searchParams.set(param, value); else url.searchParams.delete(param);
  url.searchParams.delete("done");
  window.history.replaceState(null, "", url);
}

function sortKey(row, index) {
  const cell = row.cells[index];
  if (!cell) return "";
  return (cell.dataset.sortValue ?? cell.textContent).trim();
}

function sortTable(table, index, descending) {
  const body = table.tBodies[0];
  const rows = [...body.rows];
  const keys = new Map(rows.map((row) => [row, sortKey(row, index)]));
  // A column of numbers ("-" for none, sorted first) is sorted as numbers, any other as text.
  const numeric = rows.every((row) => ["", "-"].includes(keys.get(row)) || !Number.isNaN(Number(keys.get(row))));
  const value = (row) => (["", "-"].includes(keys.get(row)) ? -Infinity : Number(keys.get(row)));
  rows.sort((a, b) => {
    const order = numeric ? value(a) - value(b)
      : keys.get(a).localeCompare(keys.get(b), undefined, { numeric: true });
    return descending ? -order : order;
  });
  body.append(...rows);
  for (const header of table.tHead.rows[0].cells) header.removeAttribute("aria-sort");
  table.tHead.rows[0].cells[index].setAttribute("aria-sort", descending ? "descending" : "ascending");
}

function sortableTables() {
  const [wantedTable, wantedColumn, wantedOrder] = (new URLSearchParams(window.location.search).get("sort") || "").split(":");
  for (const table of document.querySelectorAll("table[data-sortable]")) {
    const headers = [...table.tHead.rows[0].cells];
    headers.forEach((header, index) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.id = `sort-${table.id}-${index}`;
      button.textContent = header.textContent.trim();
      button.title = `Sort by ${button.textContent}`;
      header.replaceChildren(button);
      button.addEventListener("click", () => {
        const descending = header.getAttribute("aria-sort") === "ascending";
        sortTable(table, index, descending);
        remember("sort", `${table.id}:${index}:${descending ? "desc" : "asc"}`);
      });
    });
    const column = Number(wantedColumn);
    if (wantedTable === table.id && Number.isInteger(column) && headers[column]) {
      sortTable(table, column, wantedOrder === "desc");
    }
  }
}

function typedConfirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    const input = form.querySelector("input[name=confirm]");
    const button = form.querySelector("button[type=submit]");
    const check = () => { button.disabled = input.value !== form.dataset.confirm; };
    input.addEventListener("input", check);
    check();
  }
}

function submitOnChange() {
  for (const select of document.querySelectorAll("select[data-submit-on-change]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) {
    const pre = document.createElement("pre");
    pre.className = className;
    pre.textContent = text;
    td.appendChild(pre);
  } else {
    td.textContent = text;
  }
  return td;
}

function liveTail() {
  const button = document.getElementById("tail-toggle");
  if (!button) return;
  const table = document.getElementById("tail");
  const rows = document.getElementById("tail-rows");
  const status = document.getElementById("tail-status");
  let source = null;
  let received = 0;
  const stop = (message) => {
    if (source) source.close();
    source = null;
    button.textContent = "Start live tail";
    status.textContent = message;
  };
  button.addEventListener("click", () => {
    if (source) { stop("Stopped."); return; }
    source = new EventSource(button.dataset.tailUrl);
    table.hidden = false;
    button.textContent = "Stop live tail";
    status.textContent = "Connecting…";
    source.addEventListener("ready", () => { status.textContent = "Waiting for new records…"; });
    source.onmessage = (event) => {
      const record = JSON.parse(event.data);
      const row = document.createElement("tr");
      row.dataset.partition = record.partition;
      row.dataset.offset = record.offset;
      row.append(cell(String(record.partition)), cell(String(record.offset)), cell(record.timestamp),
                 cell(record.key, "value"), cell(record.value, "value"),
                 cell(record.headers.map(([name, value]) => `${name}: ${value}`).join("\n")));
      rows.prepend(row);
      while (rows.rows.length > MAX_TAIL_ROWS) rows.deleteRow(-1);
      received += 1;
      status.textContent = `${received} new record(s).`;
    };
    source.addEventListener("failure", (event) => stop(`Tail stopped: ${JSON.parse(event.data)}`));
  });
}

// The charts page's charts, drawn again from the console's newest samples.
function liveCharts() {
  const charts = document.getElementById("charts");
  if (!charts) return;
  const url = new URL(window.location.href);
  url.searchParams.set("fragment", "1");
  window.setInterval(async () => {
    try {
      const response = await fetch(url);
      if (response.ok) charts.innerHTML = await response.text();
    } catch {
      // The console stopped or the network hiccuped: the next refresh tries again.
    }
  }, Number(charts.dataset.refreshMs));
}

document.addEventListener("DOMContentLoaded", () => {
  filterTables();
  sortableTables();
  typedConfirmations();
  submitOnChange();
  liveTail();
  liveCharts();
});

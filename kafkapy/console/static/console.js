// The console's own script: filtering tables as one types, the typed confirmation of a
// deletion, submitting the browse form when the value format changes, and the live tail.
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
    input.addEventListener("input", apply);
    apply();
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

document.addEventListener("DOMContentLoaded", () => {
  filterTables();
  typedConfirmations();
  submitOnChange();
  liveTail();
});

// Small progressive enhancements; every page works without them.
"use strict";

// Copy buttons: <button data-copy-target="element-id">.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copyTarget);
  if (!source) return;
  const text = source.value !== undefined ? source.value : source.textContent;
  navigator.clipboard.writeText(text.trim()).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});

// Dialogs: content loaded by htmx into #dialog-body opens the <dialog>; links marked
// data-close-dialog (real links without JS) close it; "keys-changed" events close it too.
const dialog = () => document.getElementById("dialog");
// Closing empties the dialog at once, so a shown-once secret leaves the page with it (the
// "close" event, which also covers Esc, arrives a moment later).
const closeDialog = (d) => {
  d.close();
  document.getElementById("dialog-body").replaceChildren();
};

// Opening a dialog, or re-showing its form with errors, moves focus into it: to the first
// field with an error, else to a field marked autofocus, else to its heading (the shown-once
// secret: a screen reader starts with its title, and the title is in view).
document.addEventListener("htmx:afterSwap", (event) => {
  const d = dialog();
  if (!d || event.detail.target.id !== "dialog-body") return;
  if (!d.open) d.showModal();
  const error = d.querySelector(".errorlist, .flash-error");
  const field = error && (error.closest(".field, fieldset, form") || d).querySelector("input:not([type=hidden]), select, textarea");
  const heading = d.querySelector("#dialog-title");
  const target = field || d.querySelector("[autofocus]") || heading;
  if (!target) return;
  if (target === heading) heading.tabIndex = -1;
  target.focus();
  if (target === heading) d.scrollTop = 0;
});

document.addEventListener("click", (event) => {
  const closer = event.target.closest("[data-close-dialog]");
  const d = dialog();
  if (!closer || !d || !d.open) return;
  event.preventDefault();
  closeDialog(d);
});

document.addEventListener("keys-changed", (event) => {
  const d = dialog();
  // A response that shows a secret keeps the dialog open; others close it.
  if (d && d.open && !document.getElementById("new-key")) closeDialog(d);
  const message = event.detail && event.detail.message;
  const announce = document.getElementById("announce");
  if (message && announce) {
    const flash = document.createElement("div");
    flash.className = "flash flash-success";
    flash.textContent = message;
    announce.replaceChildren(flash);
  }
});

document.addEventListener("close", (event) => {
  if (event.target.id === "dialog") document.getElementById("dialog-body").replaceChildren();
}, true);

// Studio: show the chosen image before upload, and accept a dropped file.
document.addEventListener("change", (event) => {
  const input = event.target.closest("input[type=file][data-preview-target]");
  if (!input || !input.files.length) return;
  const preview = document.getElementById(input.dataset.previewTarget);
  preview.src = URL.createObjectURL(input.files[0]);
  preview.hidden = false;
});

for (const zone of document.querySelectorAll(".dropzone")) {
  const input = zone.querySelector("input[type=file]");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("is-over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("is-over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("is-over");
    if (!event.dataTransfer.files.length) return;
    input.files = event.dataTransfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
}

// Chart tooltips: the SVG's <title> per day works everywhere; with JS, a styled tip that
// appears at once follows the pointer instead (the <title> is set aside so both don't show).
let chartTip = null;
document.addEventListener("pointerover", (event) => {
  const column = event.target.closest && event.target.closest(".chart-col");
  const figure = column && column.closest(".chart");
  if (!column || !figure) return;
  const title = column.querySelector("title");
  if (title) title.remove();
  if (!chartTip) {
    chartTip = document.createElement("div");
    chartTip.className = "chart-tip";
    chartTip.setAttribute("aria-hidden", "true");
  }
  figure.appendChild(chartTip);
  chartTip.textContent = column.dataset.tip;
  const box = column.getBoundingClientRect();
  const frame = figure.getBoundingClientRect();
  const left = Math.min(Math.max(box.left + box.width / 2 - frame.left, 90), frame.width - 90);
  chartTip.style.left = `${left}px`;
  chartTip.hidden = false;
  figure.querySelectorAll(".chart-col.is-active").forEach((c) => c.classList.remove("is-active"));
  column.classList.add("is-active");
});
document.addEventListener("pointerout", (event) => {
  const figure = event.target.closest && event.target.closest(".chart");
  if (!figure || !chartTip || figure.contains(event.relatedTarget)) return;
  chartTip.hidden = true;
  figure.querySelectorAll(".chart-col.is-active").forEach((c) => c.classList.remove("is-active"));
});

// Studio: the picked template's or model's cost and the balance after the run, next to Run.
const COSTED = "input[name=template][data-cost], select[name=model]";
const showRunCost = () => {
  const picked = document.querySelector(
    "input[name=template][data-cost]:checked, select[name=model] option[data-cost]:checked");
  const output = document.getElementById("run-cost");
  if (!picked || !output) return;
  const cost = Number(picked.dataset.cost);
  const credits = `${cost} credit${cost === 1 ? "" : "s"}`;
  const balance = output.dataset.balance;
  const left = Number(balance) - cost;
  output.textContent = balance === "" ? `Costs ${credits} · unlimited plan`
    : left < 0 ? `Costs ${credits} · you have ${balance}, not enough`
    : `Costs ${credits} · ${left} left after this run`;
};
document.addEventListener("change", (event) => {
  if (event.target.matches(COSTED)) showRunCost();
});
showRunCost();

// pallay panel: uploads with progress, recording from the microphone, confirmations.
// Plain JavaScript served from this machine; every form also works without it.
"use strict";

function say(form, text, isError) {
  const status = form.querySelector("[data-status]");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function send(form, blob, name) {
  const data = new FormData(form);
  if (blob) data.set("audio", blob, name);
  const bar = form.querySelector("[data-progress]");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action);
  xhr.setRequestHeader("X-Requested-With", "fetch");
  xhr.setRequestHeader("Accept", "application/json");
  bar.hidden = false;
  bar.value = 0;
  say(form, form.dataset.sending || "Subiendo…");
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
    if (e.loaded === e.total) { bar.removeAttribute("value"); say(form, form.dataset.processing || "Procesando el audio…"); }
  };
  xhr.onload = () => {
    bar.hidden = true;
    let answer = null;
    try { answer = JSON.parse(xhr.responseText); } catch (err) { answer = null; }
    if (!answer) { say(form, "Error " + xhr.status, true); return; }
    say(form, answer.message, !answer.ok);
    if (answer.ok && answer.audio) {
      const player = form.querySelector("[data-result]");
      player.src = answer.audio;
      player.hidden = false;
    }
    if (answer.ok) refresh();
  };
  xhr.onerror = () => { bar.hidden = true; say(form, form.dataset.offline || "No se pudo enviar: revise la conexión.", true); };
  xhr.send(data);
}

// After a change, the parts of the page marked data-refresh are fetched again (the rest stays).
async function refresh() {
  const parts = document.querySelectorAll("[data-refresh][id]");
  if (!parts.length) return;
  const answer = await fetch(location.href, { credentials: "same-origin" });
  if (!answer.ok) return;
  const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
  parts.forEach((part) => { const next = fresh.getElementById(part.id); if (next) part.replaceWith(next); });
}

function setupUpload(form) {
  const drop = form.querySelector("[data-drop]");
  const input = form.querySelector("[data-file]");
  const chosen = form.querySelector("[data-chosen]");
  let recorded = null;
  input.addEventListener("change", () => { recorded = null; chosen.textContent = input.files[0] ? input.files[0].name : ""; });
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => {
    if (e.dataTransfer.files.length) { input.files = e.dataTransfer.files; input.dispatchEvent(new Event("change")); }
  });
  const start = form.querySelector("[data-record]");
  const stop = form.querySelector("[data-stop]");
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    start.hidden = true;  // browsers allow the microphone only on https or on this machine
    form.querySelector("[data-mic-hint]").hidden = false;
  }
  let recorder = null;
  start.addEventListener("click", async () => {
    let stream;
    try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); }
    catch (err) { say(form, "No se pudo usar el micrófono: dé permiso al navegador.", true); return; }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
    recorder.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      recorded = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
      chosen.textContent = "● " + Math.round(recorded.size / 1024) + " KB";
      start.hidden = false; stop.hidden = true;
      say(form, "Grabación lista: pulse «Subir».");
    };
    recorder.start(250);
    start.hidden = true; stop.hidden = false;
    say(form, "Grabando… hable cerca del teléfono.");
  });
  stop.addEventListener("click", () => { if (recorder && recorder.state !== "inactive") recorder.stop(); });
  form.addEventListener("submit", (e) => {
    if (!form.reportValidity()) return;
    e.preventDefault();
    if (recorded) { send(form, recorded, "grabacion.webm"); return; }
    if (!input.files.length) { say(form, "Elija un archivo de audio o grabe con el micrófono.", true); return; }
    send(form, null, null);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-upload]").forEach(setupUpload);
  document.querySelectorAll("[data-confirm]").forEach((el) => {
    const ev = el.tagName === "FORM" ? "submit" : "click";
    el.addEventListener(ev, (e) => { if (!window.confirm(el.dataset.confirm)) e.preventDefault(); });
  });
});

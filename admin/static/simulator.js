// The phone simulator: plays what the session driver asks for and sends back the key pressed.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-simulator]");
  if (!box) return;
  const audio = box.querySelector("[data-sim-audio]");
  const status = box.querySelector("[data-sim-status]");
  const now = box.querySelector("[data-sim-now]");
  const keys = box.querySelectorAll("[data-key]");
  const call = box.querySelector("[data-sim-call]");
  const hangup = box.querySelector("[data-sim-hangup]");
  let current = null;   // what the driver asked for
  let waiter = null;    // the timer of a wait for a key
  let queue = [];       // prompts still to play
  let busy = false;

  async function post(url, body) {
    const answer = await fetch(url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": box.dataset.csrf },
      body: JSON.stringify(body || {}) });
    if (!answer.ok) throw new Error("HTTP " + answer.status);
    return answer.json();
  }

  function allow(accepted) {
    keys.forEach((k) => { k.disabled = !accepted.includes(k.dataset.key); });
  }

  async function reply(outcome) {
    if (busy) return;
    busy = true;
    clearTimeout(waiter);
    audio.onended = null;
    audio.pause();
    try { show(await post(box.dataset.step, outcome)); }
    catch (err) { status.textContent = "Error: " + err.message; }
    busy = false;
  }

  function playNext() {
    if (!queue.length) { reply({ key: null }); return; }
    audio.src = queue.shift();
    audio.onended = playNext;
    audio.play().catch(() => { status.textContent = "Pulse play"; });
  }

  function show(step) {
    current = step;
    now.textContent = "";
    if (step.do === "end") { end(); return; }
    allow(step.keys || "");
    if (step.do === "play") {
      status.textContent = (box.dataset.hearing || "Escuchando…");
      queue = step.audio.slice();
      playNext();
    } else if (step.do === "lesson") {
      status.textContent = (box.dataset.lesson || "Lección");
      queue = [];
      audio.src = step.audio;
      audio.onended = () => reply({ key: null, position_ms: Math.round(audio.duration * 1000) });
      audio.onloadedmetadata = () => { audio.currentTime = step.offset_ms / 1000; };
      audio.play().catch(() => {});
    } else if (step.do === "wait") {
      status.textContent = (box.dataset.waiting || "Esperando una tecla…");
      now.textContent = step.keys ? "[" + step.keys.split("").join(" ") + "]" : "";
      waiter = setTimeout(() => reply({ key: null }), step.timeout_s * 1000);
    } else {
      reply({ key: null });
    }
  }

  function end() {
    audio.pause();
    allow("");
    hangup.disabled = true;
    call.disabled = false;
    status.textContent = (box.dataset.ended || "Llamada terminada.");
  }

  keys.forEach((k) => k.addEventListener("click", () => {
    if (!current || k.disabled) return;
    reply({ key: k.dataset.key, position_ms: Math.round(audio.currentTime * 1000) });
  }));
  call.addEventListener("click", async () => {
    call.disabled = true;
    hangup.disabled = false;
    try { show(await post(box.dataset.start)); }
    catch (err) { status.textContent = "Error: " + err.message; call.disabled = false; }
  });
  hangup.addEventListener("click", () => reply({ hangup: true, position_ms: Math.round(audio.currentTime * 1000) }));
});

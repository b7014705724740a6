// loralab serve's page: pick an adapter, submit an input, see the answer, rate it.
"use strict";
const $ = (id) => document.getElementById(id);
let models = {};          // name -> {kind: classify|generate|embed, task, chat}
let responseId = null;

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
                                          '"': "&quot;", "'": "&#39;"}[c]));
}

async function loadModels() {
  const reply = await fetch("/v1/adapters");
  const listing = await reply.json();
  const select = $("model");
  select.innerHTML = "";
  models = {};
  for (const a of listing.data.filter((a) => a.status === "loaded")) {
    models[a.name] = {kind: a.kind, task: a.task, chat: a.chat, pairs: a.pairs, base: a.base};
  }
  for (const b of listing.bases) {
    models[b.name] = {kind: b.kind, task: "base model", chat: b.chat, pairs: false,
                      base: b.name};
  }
  for (const name of Object.keys(models)) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = `${name} — ${models[name].task}`;
    select.appendChild(option);
  }
  const failed = listing.data.filter((a) => a.status === "failed").length;
  $("summary").textContent = `${Object.keys(models).length} models` +
    (failed ? `, ${failed} adapter folders failed to load (see /v1/adapters)` : "");
  showModel();
}

function showModel() {
  const m = models[$("model").value];
  if (!m) { $("model-info").textContent = "nothing is served yet"; return; }
  const what = {classify: "classifies the input", generate: "generates a continuation",
                embed: "returns an embedding"}[m.kind];
  $("model-info").textContent = `${m.task} on ${m.base}: ${what}`;
  // a second text for adapters trained on pairs (or that cannot tell: pairs null)
  $("pair-row").style.display = m.kind === "classify" && m.pairs !== false ? "block" : "none";
}

function setAnswer(html, id) {
  $("answer").className = "";
  $("answer").innerHTML = html;
  responseId = id || null;
  for (const b of [$("up"), $("down")]) {
    b.disabled = !responseId;
    b.classList.remove("chosen");
  }
  $("status").textContent = "";
}

function renderClassification(result) {
  if (result.entities !== undefined) {
    let html = "", at = 0;
    const text = result.text || "";
    for (const e of result.entities) {
      html += escapeHtml(text.slice(at, e.start));
      html += `<mark title="${escapeHtml(e.entity)} ${e.score}">` +
              `${escapeHtml(text.slice(e.start, e.end))}<small>${escapeHtml(e.entity)}</small></mark>`;
      at = e.end;
    }
    html += escapeHtml(text.slice(at));
    const count = `<p class="hint">${result.entities.length} entities</p>`;
    return `<p id="entities">${html}</p>${count}`;
  }
  if (result.value !== undefined) {
    return `<p>value: <strong id="value">${result.value}</strong></p>`;
  }
  const scores = Object.entries(result.scores || {}).sort((a, b) => b[1] - a[1]);
  const bars = scores.slice(0, 10).map(([name, p]) =>
    `<div class="bar${name === result.label ? " best" : ""}"><span>${escapeHtml(name)}</span>` +
    `<div class="fill" style="width:${(100 * p).toFixed(1)}%"></div>` +
    `<span>${(100 * p).toFixed(1)}%</span></div>`).join("");
  return `<p>label: <strong id="label">${escapeHtml(result.label)}</strong></p>${bars}`;
}

async function postJson(url, body) {
  const reply = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                  body: JSON.stringify(body)});
  const data = await reply.json();
  if (!reply.ok) throw new Error(data.error ? data.error.message : reply.statusText);
  return data;
}

async function classify(name, text, pair) {
  const input = pair ? {text, text_pair: pair} : text;
  const data = await postJson("/v1/classify", {adapter: name, inputs: [input]});
  setAnswer(renderClassification(data.results[0]), data.id);
}

async function embed(name, text) {
  const data = await postJson("/v1/embeddings", {model: name, input: text});
  const v = data.data[0].embedding;
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  setAnswer(`<p>embedding of ${v.length} numbers, norm ${norm.toFixed(3)}</p>` +
            `<p class="hint">${v.slice(0, 8).map((x) => x.toFixed(4)).join(", ")} …</p>`);
}

async function generate(name, text, chat) {
  const url = chat ? "/v1/chat/completions" : "/v1/completions";
  const body = {model: name, stream: true, max_tokens: 128, temperature: 0};
  if (chat) body.messages = [{role: "user", content: text}]; else body.prompt = text;
  const reply = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                  body: JSON.stringify(body)});
  if (!reply.ok) {
    const data = await reply.json();
    throw new Error(data.error ? data.error.message : reply.statusText);
  }
  setAnswer('<pre id="generated"></pre>');
  const out = $("generated");
  const reader = reply.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", id = null;
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    const events = buffer.split("\n\n");
    buffer = events.pop();
    for (const event of events) {
      const data = event.replace(/^data: /, "");
      if (data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      id = chunk.id;
      const choice = chunk.choices[0];
      if (choice) out.textContent += chat ? (choice.delta.content || "") : choice.text;
    }
  }
  setAnswer(`<pre id="generated">${escapeHtml(out.textContent)}</pre>`, id);
}

async function submit(event) {
  event.preventDefault();
  const name = $("model").value, text = $("input").value, pair = $("pair").value.trim();
  const m = models[name];
  if (!m) return;
  $("submit").disabled = true;
  setAnswer('<span class="hint">working…</span>');
  try {
    if (m.kind === "classify") await classify(name, text, pair);
    else if (m.kind === "embed") await embed(name, text);
    else await generate(name, text, m.chat);
  } catch (err) {
    setAnswer(`<span class="error">${escapeHtml(err.message)}</span>`);
  } finally {
    $("submit").disabled = false;
  }
}

async function rate(rating, button) {
  if (!responseId) return;
  try {
    const data = await postJson("/v1/feedback", {response_id: responseId, rating});
    button.classList.add("chosen");
    $("status").textContent = `thanks: stored as feedback #${data.id}`;
  } catch (err) {
    $("status").textContent = err.message;
  }
}

$("model").addEventListener("change", showModel);
$("form").addEventListener("submit", submit);
$("up").addEventListener("click", () => rate("up", $("up")));
$("down").addEventListener("click", () => rate("down", $("down")));
loadModels().catch((err) => { $("summary").textContent = `cannot list models: ${err.message}`; });

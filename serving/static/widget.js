/*
 * News Assistant chat widget: a chat bubble for any page, answering through the app's HTTP API.
 *
 *   <script src="https://news.example.org/widget.js" defer></script>
 *
 * Optional attributes on the script tag:
 *   data-api="https://news.example.org"  where the API lives (default: where this file came from)
 *   data-title="Ask our archive"         the panel's title
 *   data-token="..."                     sent as "Authorization: Bearer"; visible to every
 *                                        visitor, so only for tokens meant to be public
 *   data-open="true"                     start with the panel open
 *
 * The page's origin must be in the app's `cors_origins`; when it is not, or the app wants a
 * token, or its store is down, the widget says so and what to set. Every text from the answer,
 * the articles or the user goes in with textContent: nothing received is ever parsed as HTML.
 */
(function () {
  "use strict";
  const script = document.currentScript;
  if (!script || window.__newsAssistantWidget) return;
  window.__newsAssistantWidget = true;

  const base = (script.dataset.api || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  const title = script.dataset.title || "Ask the news archive";
  const token = script.dataset.token || "";
  const history = [];

  const CSS = `
    :host { all: initial; }
    * { box-sizing: border-box; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
    .bubble { position: fixed; right: 20px; bottom: 20px; width: 56px; height: 56px;
      border-radius: 50%; border: 0; background: #2563eb; color: #fff; font-size: 26px;
      cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); z-index: 2147483000;
      display: flex; align-items: center; justify-content: center; }
    .panel { position: fixed; right: 20px; bottom: 88px; width: min(380px, calc(100vw - 40px));
      height: min(560px, calc(100vh - 120px)); display: none; flex-direction: column;
      background: #fff; color: #111827; border-radius: 14px; overflow: hidden;
      box-shadow: 0 10px 30px rgba(0,0,0,.25); z-index: 2147483000; font-size: 14px; }
    .panel.open { display: flex; }
    header { background: #2563eb; color: #fff; padding: 10px 14px; font-weight: 600;
      display: flex; justify-content: space-between; align-items: center; }
    header button { background: none; border: 0; color: #fff; font-size: 18px; cursor: pointer; }
    .log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column;
      gap: 10px; }
    .msg { padding: 8px 11px; border-radius: 10px; line-height: 1.45; max-width: 92%;
      white-space: pre-wrap; overflow-wrap: anywhere; }
    .user { align-self: flex-end; background: #dbeafe; }
    .bot { align-self: flex-start; background: #f3f4f6; }
    .error { color: #b91c1c; }
    .cite { color: #2563eb; font-weight: 600; cursor: pointer; border: 0; background: none;
      padding: 0 1px; font-size: .85em; vertical-align: super; }
    ol.sources { margin: 8px 0 0; padding-left: 0; list-style: none; white-space: normal; }
    ol.sources li { border-top: 1px solid #e5e7eb; padding: 6px 0; font-size: 13px; }
    ol.sources li.active { background: #fef3c7; }
    .src-title { font-weight: 600; }
    .src-meta { color: #6b7280; }
    blockquote { margin: 4px 0 0; padding-left: 8px; border-left: 3px solid #fbbf24;
      color: #374151; }
    form { display: flex; gap: 6px; padding: 10px; border-top: 1px solid #e5e7eb; }
    input { flex: 1; padding: 8px 10px; border: 1px solid #d1d5db; border-radius: 8px;
      font-size: 14px; }
    form button { padding: 8px 12px; border: 0; border-radius: 8px; background: #2563eb;
      color: #fff; cursor: pointer; }
    form button:disabled { opacity: .5; cursor: default; }
  `;

  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (error) {
      return null;
    }
  }

  function chatIcon() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "26");
    svg.setAttribute("height", "26");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 "
      + "2 0 0 1 2-2zm3 6v2h2V9H7zm4 0v2h2V9h-2zm4 0v2h2V9h-2z");
    svg.append(path);
    return svg;
  }

  const host = el("div", { "data-news-assistant": "" });
  const root = host.attachShadow({ mode: "open" });
  root.append(el("style", { text: CSS }));
  const bubble = el("button", { class: "bubble", type: "button", "aria-label": title,
    title });
  bubble.append(chatIcon());
  const log = el("div", { class: "log", role: "log", "aria-live": "polite" });
  const input = el("input", { type: "text", maxlength: "2000", placeholder: "Ask a question…",
    "aria-label": "Question" });
  const send = el("button", { type: "submit", text: "Ask" });
  const form = el("form", {}, [input, send]);
  const close = el("button", { type: "button", "aria-label": "Close", text: "×" });
  const panel = el("div", { class: "panel", role: "dialog", "aria-label": title }, [
    el("header", {}, [el("span", { text: title }), close]),
    log,
    form,
  ]);
  root.append(bubble, panel);

  function toggle(open) {
    panel.classList.toggle("open", open);
    if (open) input.focus();
  }
  bubble.addEventListener("click", () => toggle(!panel.classList.contains("open")));
  close.addEventListener("click", () => toggle(false));

  function renderAnswer(data) {
    const box = el("div", { class: "msg bot" });
    const items = new Map();
    const list = el("ol", { class: "sources" });
    for (const c of data.citations || []) {
      const meta = [c.source, c.published].filter(Boolean).join(", ");
      const url = safeUrl(c.url || "");
      const name = url
        ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "src-title",
            text: c.title || url })
        : el("span", { class: "src-title", text: c.title || "(untitled)" });
      const item = el("li", { "data-number": String(c.number) }, [
        el("span", { text: `[${c.number}] ` }),
        name,
        el("div", { class: "src-meta", text: meta }),
      ]);
      if (c.quote) item.append(el("blockquote", { text: c.quote }));
      items.set(c.number, item);
      list.append(item);
    }
    // Text between markers is added as text nodes; a known [n] becomes a button to its source.
    const text = data.answer || "";
    let last = 0;
    // The short answer the text leads with ("17 June [1]. ..."), set in bold.
    const short = data.short_answer;
    if (short && text.startsWith(`${short.text} [${short.citation}]`)) {
      box.append(el("strong", { class: "short", text: short.text }));
      last = short.text.length;
    }
    for (const match of text.matchAll(/\[(\d{1,3})\]/g)) {
      const item = items.get(Number(match[1]));
      if (!item) continue;
      box.append(document.createTextNode(text.slice(last, match.index)));
      const cite = el("button", { type: "button", class: "cite", text: match[0] });
      cite.addEventListener("click", () => {
        for (const other of items.values()) other.classList.remove("active");
        item.classList.add("active");
        item.scrollIntoView({ block: "nearest" });
      });
      box.append(cite);
      last = match.index + match[0].length;
    }
    box.append(document.createTextNode(text.slice(last)));
    if (items.size) box.append(list);
    return box;
  }

  // fetch says only "Failed to fetch", both when the app is down and when it refuses this
  // page's origin (CORS). A no-cors request still gets through to an app that is up, so its
  // success means the app is there and only the origin is refused.
  async function whyUnreachable() {
    try {
      await fetch(`${base}/widget.js`, { mode: "no-cors", cache: "no-store" });
    } catch (error) {
      return `cannot reach the News Assistant at ${base}: is it running there? ` +
        "(data-api on this widget's script tag says where it is)";
    }
    if (location.origin === "null") {
      return `this page has no origin (it was opened from a file), so ${base} cannot allow ` +
        "it: serve the page over http(s) and add its origin to cors_origins in the app's settings";
    }
    return `this site is not allowed to ask ${base}: add ${location.origin} to cors_origins ` +
      "in the app's settings";
  }

  // An answer that is not one, said so that whoever runs the site knows what to change.
  function whyRefused(status, data) {
    const message = (data.error && data.error.message) || "";
    if (status === 401) {
      return token
        ? `${base} did not accept the token in data-token: set it to the app's api_token`
        : `${base} asks for an API token: set data-token on this widget's script tag to the ` +
          "app's api_token";
    }
    if (status === 503) {
      return `the news archive at ${base} cannot search right now, its store is down` +
        (message ? ` (${message})` : "") +
        "; try again in a minute, and if it lasts, check the app's Chroma server";
    }
    return message || `${base} answered HTTP ${status}`;
  }

  async function ask(question) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(`${base}/api/ask`, {
        method: "POST",
        headers,
        body: JSON.stringify({ question, history: history.slice(-8) }),
      });
    } catch (error) {
      throw new Error(await whyUnreachable());
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(whyRefused(response.status, data));
    return data;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    input.value = "";
    send.disabled = true;
    log.append(el("div", { class: "msg user", text: question }));
    const waiting = el("div", { class: "msg bot", text: "Searching the articles…" });
    log.append(waiting);
    log.scrollTop = log.scrollHeight;
    try {
      const data = await ask(question);
      waiting.replaceWith(renderAnswer(data));
      history.push({ role: "user", content: question }, { role: "assistant", content: data.answer });
    } catch (error) {
      waiting.replaceWith(el("div", { class: "msg bot error", text: `Sorry: ${error.message}` }));
    } finally {
      send.disabled = false;
      log.scrollTop = log.scrollHeight;
    }
  });

  function mount() {
    document.body.append(host);
    if (script.dataset.open === "true") toggle(true);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();

"use strict";
// The gotty page: xterm.js in the browser, a shell in the container, joined
// by tty-web's WebSocket protocol. Binary frames, first byte the command:
//   client → server  0x00 input bytes · 0x01 resize rows,cols (u16 BE)
//   server → client  0x00 output · 0x10 session id · 0x12 shell exited
//                    0x13 window size · 0x14 end of scrollback replay
// The WebSocket URL is computed from location, relative to this page, so it
// works under Substrate's /gotty;data=sp-…/ prefix and as wss:// behind TLS.

const IN_INPUT = 0x00, IN_RESIZE = 0x01;
const OUT_OUTPUT = 0x00, OUT_SESSION = 0x10, OUT_EXIT = 0x12, OUT_REPLAY_END = 0x14;
const SESSION_NOT_FOUND = 4404;
// A reload reattaches to the same shell (per tab, per URL).
const SID_KEY = "gotty-sid:" + location.pathname;

const statusEl = document.getElementById("status");
const setStatus = (text, cls) => { statusEl.textContent = text; statusEl.className = cls || ""; };

const term = new Terminal({
  cursorBlink: true,
  fontFamily: "monospace",
  fontSize: 14,
  theme: { background: "#1a1b26", foreground: "#c0caf5", cursor: "#c0caf5" },
});
const fit = new FitAddon.FitAddon();
term.loadAddon(fit);
term.open(document.getElementById("terminal"));
fit.fit();
term.focus();

const encoder = new TextEncoder();
let ws = null;
let retryMs = 500;
let exited = false;

const frame = (cmd, bytes) => {
  const f = new Uint8Array(1 + bytes.length);
  f[0] = cmd;
  f.set(bytes, 1);
  return f;
};
const send = (f) => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(f); };
const sendResize = () => send(frame(IN_RESIZE, [term.rows >> 8, term.rows & 255, term.cols >> 8, term.cols & 255]));

const wsUrl = () => {
  const u = new URL("ws", location.href);
  u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  u.hash = "";
  const sid = sessionStorage.getItem(SID_KEY);
  u.search = sid ? "?sid=" + encodeURIComponent(sid) : "";
  return u.href;
};

const open = () => {
  exited = false;
  ws = new WebSocket(wsUrl());
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { retryMs = 500; setStatus("connected", "ok"); };
  ws.onmessage = (ev) => {
    const data = new Uint8Array(ev.data);
    if (data.length === 0) return;
    const payload = data.subarray(1);
    switch (data[0]) {
      case OUT_OUTPUT: term.write(payload); break;
      case OUT_SESSION:
        term.reset();
        sessionStorage.setItem(SID_KEY, new TextDecoder().decode(payload));
        break;
      case OUT_REPLAY_END: sendResize(); break;
      case OUT_EXIT:
        exited = true;
        sessionStorage.removeItem(SID_KEY);
        term.write("\r\n[shell exited — press Enter for a new one]\r\n");
        setStatus("shell exited", "bad");
        break;
    }
  };
  ws.onclose = (ev) => {
    ws = null;
    if (exited) return;
    if (ev.code === SESSION_NOT_FOUND) {
      // The container was restarted: its shells are gone, the space is not.
      sessionStorage.removeItem(SID_KEY);
      setStatus("new shell", "");
      open();
      return;
    }
    setStatus("disconnected — reconnecting", "bad");
    setTimeout(open, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  };
};

term.onData((d) => {
  if (exited) { if (d === "\r") open(); return; }
  send(frame(IN_INPUT, encoder.encode(d)));
});
term.onBinary((d) => send(frame(IN_INPUT, Uint8Array.from(d, (c) => c.charCodeAt(0) & 255))));
term.onResize(() => sendResize());
new ResizeObserver(() => fit.fit()).observe(document.getElementById("terminal"));
open();

// The live view of a running task: it follows the task's event stream
// (server-sent events) and adds each event to the page as the server
// renders it. Every value is set as text, never as markup.
"use strict";
(() => {
  const list = document.getElementById("events");
  if (!list || !list.dataset.stream || typeof EventSource === "undefined") {
    return;
  }
  const state = document.getElementById("task-state");
  const ended = document.getElementById("task-ended");
  const result = document.getElementById("task-result");
  const note = document.getElementById("live-note");
  const span = (cls, text) => {
    const s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  };
  const code = (cls, text) => {
    const c = document.createElement("code");
    c.className = cls;
    c.textContent = text;
    return c;
  };
  const source = new EventSource(list.dataset.stream);
  source.addEventListener("task-event", (e) => {
    const ev = JSON.parse(e.data);
    if (document.getElementById("event-" + ev.seq)) {
      return;
    }
    const li = document.createElement("li");
    li.id = "event-" + ev.seq;
    li.className = "event " + ev.type;
    li.append(span("etype", ev.type), " ", span("etime", new Date(ev.time).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC")));
    if (ev.tool) {
      li.append(" ", code("tool", ev.tool));
    }
    if (ev.arguments) {
      li.append(" ", code("args", ev.arguments));
    }
    if (ev.text) {
      li.append(" ", span("etext", ev.text));
    }
    list.append(li);
  });
  source.addEventListener("state", (e) => {
    const st = JSON.parse(e.data);
    state.textContent = st.state;
    state.className = "state " + st.state;
    if (ended && st.ended) {
      ended.textContent = st.ended;
    }
    if (result && st.result) {
      result.className = "result " + st.state;
      result.querySelector("h2").textContent = st.state === "failed" ? "Error" : "Answer";
      result.querySelector("pre").textContent = st.result;
      result.hidden = false;
    }
  });
  source.addEventListener("end", () => {
    source.close();
    if (note) {
      note.textContent = "The task has ended.";
    }
  });
})();

// The control server's client, shared by the widget pages: actions go out
// with ids (queued until the socket is open), their results come back to
// the callback given with them, and every other message is an event.
// connectControl(onEvent, onLost) connects with the page's ?token= and
// reconnects a second after the connection is lost (after calling onLost).
'use strict';
const { act, connectControl } = (() => {
  const token = new URLSearchParams(location.search).get('token') || '';
  let ws = null;
  let nextId = 1;
  const results = new Map(); // action id -> what to do with its result
  const unsent = [];
  function act(action, then) {
    const id = nextId++;
    if (then) results.set(id, then);
    const text = JSON.stringify(Object.assign({ id }, action));
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(text); else unsent.push(text);
  }
  function connectControl(onEvent, onLost) {
    ws = new WebSocket(`ws://${location.host}/control?token=${encodeURIComponent(token)}`);
    ws.onopen = () => { for (const text of unsent.splice(0)) ws.send(text); };
    ws.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      if (ev.event === 'action_result') {
        const then = results.get(ev.id);
        results.delete(ev.id);
        if (then) then(ev);
      } else {
        onEvent(ev);
      }
    };
    ws.onclose = () => {
      onLost();
      document.getElementById('phone').textContent = 'webphone is not reachable; retrying…';
      setTimeout(() => connectControl(onEvent, onLost), 1000);
    };
  }
  return { act, connectControl };
})();

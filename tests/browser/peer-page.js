// The page side of the JsSIP test peer: one JsSIP user agent per page, its
// calls, and a tone meter (tone-meter.js) on each call's remote audio.
// jssip-peer.mjs calls `window.peer.run(cmd, args)` for each command and
// receives every event through `window.peerEvent(object)`.
//
// Calls are named c1, c2, ... in the order this page learns of them.
'use strict';

(() => {
  const DTMF_LOW = [697, 770, 852, 941];
  const DTMF_HIGH = [1209, 1336, 1477, 1633];
  const DTMF_KEYS = ['123A', '456B', '789C', '*0#D'];
  // A frequency is present in a 40 ms block when at least this share of the
  // block's power is a sine at it, and the block is louder than SILENT_DB.
  const PRESENT_SHARE = 0.5;
  const SILENT_DB = -60;
  const HISTORY_BLOCKS = 1000;

  let ua = null;
  let audioCtx = null;
  let nextCall = 1;
  const calls = new Map();
  // Sessions created by an accepted REFER or Replaces, waiting for their name.
  const origins = new WeakMap();

  const emit = (event, fields = {}) => window.peerEvent({ event, ...fields });

  function call(id) {
    const c = calls.get(id);
    if (!c) throw new Error(`no call ${id}`);
    return c;
  }

  // A microphone stream per call: the fake device plays the generated tone.
  // No echo cancellation, noise suppression or gain control: they would
  // treat a steady tone as noise.
  function microphone() {
    return navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      video: false,
    });
  }

  const sessionOptions = (stream) => ({
    mediaStream: stream,
    mediaConstraints: { audio: true, video: false },
    pcConfig: { iceServers: [] },
  });

  // The SIP text on the wire, both ways, as `sip` events.
  function tracedSocket(url) {
    const socket = new JsSIP.WebSocketInterface(url);
    const send = socket.send.bind(socket);
    socket.send = (message) => {
      emit('sip', { dir: 'out', text: String(message) });
      return send(message);
    };
    let ondata = null;
    Object.defineProperty(socket, 'ondata', {
      get: () => ondata,
      set: (fn) => {
        ondata = (data) => {
          if (typeof data === 'string' && data.trim() !== '') emit('sip', { dir: 'in', text: data });
          fn(data);
        };
      },
    });
    return socket;
  }

  function track(session) {
    const c = { id: `c${nextCall++}`, session, pc: null, meter: null, blocks: [], waiters: [], refer: null, dtmf: null };
    calls.set(c.id, c);
    const call = c.id;
    session.on('peerconnection', ({ peerconnection }) => attachConnection(c, peerconnection));
    if (session.connection) attachConnection(c, session.connection);
    session.on('progress', (e) =>
      emit('progress', { call, originator: e.originator, status: e.response ? e.response.status_code : null }),
    );
    session.on('accepted', (e) => {
      c.acceptedAt = performance.now();
      emit('accepted', { call, originator: e.originator });
    });
    session.on('confirmed', (e) => emit('confirmed', { call, originator: e.originator }));
    session.on('ended', (e) => {
      emit('ended', { call, originator: e.originator, cause: e.cause });
      stopMeter(c);
    });
    session.on('failed', (e) =>
      emit('failed', {
        call,
        originator: e.originator,
        cause: e.cause,
        status: e.message && e.message.status_code ? e.message.status_code : null,
      }),
    );
    session.on('hold', (e) => emit('hold', { call, originator: e.originator }));
    session.on('unhold', (e) => emit('unhold', { call, originator: e.originator }));
    session.on('newDTMF', (e) =>
      emit('dtmf', { call, originator: e.originator, tone: e.dtmf.tone, duration: e.dtmf.duration }),
    );
    session.on('newInfo', (e) =>
      emit('info', { call, originator: e.originator, content_type: e.info.contentType, body: e.info.body }),
    );
    session.on('refer', (data) => {
      c.refer = data;
      emit('refer', {
        call,
        refer_to: data.request.getHeader('Refer-To'),
        referred_by: data.request.getHeader('Referred-By') || null,
      });
    });
    // An INVITE with Replaces for this call: accepted; the new session then
    // comes as `incoming` with `replaces` naming this call.
    session.on('replaces', (data) => {
      emit('replaces', { call });
      data.accept((s) => origins.set(s, { replaces: call }));
    });
    return c;
  }

  function attachConnection(c, pc) {
    if (c.pc === pc) return;
    c.pc = pc;
    pc.addEventListener('track', (e) => {
      watchFirstRtp(c, e.track);
      attachMeter(c, e.track);
    });
    pc.addEventListener('iceconnectionstatechange', () =>
      emit('ice', { call: c.id, state: pc.iceConnectionState }),
    );
  }

  // A remote track is muted until its first RTP packet arrives: `first_rtp`
  // reports when, from the call's `accepted` (the 200 OK, for a caller).
  function watchFirstRtp(c, track) {
    const report = () => {
      if (c.firstRtpAt !== undefined) return;
      c.firstRtpAt = performance.now();
      const after = c.acceptedAt === undefined ? null : Math.round(c.firstRtpAt - c.acceptedAt);
      emit('first_rtp', { call: c.id, after_accepted_ms: after });
    };
    if (!track.muted) report();
    else track.addEventListener('unmute', report, { once: true });
  }

  // The meter listens to the receiver's track through a stream of our own:
  // the remote stream loses the track while the far end does not send
  // (hold), and a media element playing it would stop for good.
  function attachMeter(c, track) {
    if (c.meter && c.meter.track === track) return;
    if (c.meter) disconnectMeter(c);
    const stream = new MediaStream([track]);
    // Chromium feeds a remote track to WebAudio only while a media element
    // plays it too.
    const element = new Audio();
    element.muted = true;
    element.srcObject = stream;
    element.play().catch((err) => emit('log', { text: `audio element: ${err}` }));
    const source = audioCtx.createMediaStreamSource(stream);
    c.freqs = c.freqs || [...DTMF_LOW, ...DTMF_HIGH];
    const node = new AudioWorkletNode(audioCtx, 'tone-meter', {
      numberOfOutputs: 0,
      processorOptions: { freqs: c.freqs },
    });
    node.port.onmessage = (e) => onBlock(c, e.data);
    source.connect(node);
    c.meter = { track, element, source, node };
  }

  function disconnectMeter(c) {
    c.meter.source.disconnect();
    c.meter.node.port.onmessage = null;
    c.meter.element.srcObject = null;
    c.meter = null;
  }

  function stopMeter(c) {
    if (!c.meter) return;
    disconnectMeter(c);
    for (const w of c.waiters) w.reject(new Error('the call ended while measuring'));
    c.waiters = [];
  }

  function onBlock(c, block) {
    block.powers = Object.fromEntries(c.freqs.map((f, i) => [f, block.powers[i]]));
    c.blocks.push(block);
    if (c.blocks.length > HISTORY_BLOCKS) c.blocks.shift();
    detectDtmf(c, block);
    c.waiters = c.waiters.filter((w) => !w.offer(block));
  }

  // DTMF heard in the audio (what Chromium plays out for RFC 4733 events it
  // receives): a block is a digit when its strongest low and high DTMF
  // frequencies carry most of its power. A digit is reported once when two
  // blocks in a row agree; it has ended after two blocks that are no digit
  // (one odd block in the middle of a tone is a playout hiccup, not a gap).
  function detectDtmf(c, block) {
    const d = c.dtmf || (c.dtmf = { candidate: null, run: 0, misses: 0, reported: false });
    let digit = null;
    if (block.level_db > SILENT_DB) {
      const low = DTMF_LOW.map((f) => block.powers[f]);
      const high = DTMF_HIGH.map((f) => block.powers[f]);
      const li = low.indexOf(Math.max(...low));
      const hi = high.indexOf(Math.max(...high));
      if (low[li] + high[hi] >= 0.6 && low[li] >= 0.15 && high[hi] >= 0.15) digit = DTMF_KEYS[li][hi];
    }
    if (digit === null) {
      d.misses += 1;
      if (d.misses >= 2) Object.assign(d, { candidate: null, run: 0, reported: false });
      return;
    }
    d.misses = 0;
    if (digit !== d.candidate) {
      Object.assign(d, { candidate: digit, run: 1, reported: false });
      return;
    }
    d.run += 1;
    if (d.run >= 2 && !d.reported) {
      d.reported = true;
      emit('heard_dtmf', { call: c.id, digit, level_db: Math.round(block.level_db) });
    }
  }

  // Collects `blocks` new blocks, then summarises `freq` over them.
  function measure(c, freq, blocks) {
    if (!c.meter) throw new Error(`call ${c.id} has no remote audio yet`);
    if (!c.freqs.includes(freq)) {
      c.freqs = [...c.freqs, freq];
      c.meter.node.port.postMessage({ freqs: c.freqs });
    }
    return new Promise((resolve, reject) => {
      const got = [];
      c.waiters.push({
        reject,
        offer: (block) => {
          // Blocks analysed before the worklet learnt the frequency lack it.
          if (block.powers[freq] === undefined) return false;
          got.push(block);
          if (got.length < blocks) return false;
          const shares = got.map((b) => b.powers[freq]);
          const present = got.filter((b) => b.level_db > SILENT_DB && b.powers[freq] >= PRESENT_SHARE).length;
          const levels = got.map((b) => b.level_db).sort((a, b) => a - b);
          resolve({
            freq,
            blocks: got.length,
            present: present / got.length,
            mean_share: shares.reduce((a, b) => a + b, 0) / got.length,
            median_level_db: levels[Math.floor(levels.length / 2)],
          });
          return true;
        },
      });
    });
  }

  // The call's WebRTC statistics: every audio RTP stream each way (a new
  // SSRC from the far end shows up as a second inbound stream), codecs.
  async function stats(c) {
    if (!c.pc) throw new Error(`call ${c.id} has no peer connection`);
    const report = await c.pc.getStats();
    const out = { inbound: [], outbound: [], codecs: {} };
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.inbound.push({
          ssrc: s.ssrc,
          packets: s.packetsReceived,
          bytes: s.bytesReceived,
          lost: s.packetsLost,
          codec_id: s.codecId ?? null,
        });
      }
      if (s.type === 'outbound-rtp' && s.kind === 'audio') {
        out.outbound.push({ ssrc: s.ssrc, packets: s.packetsSent, bytes: s.bytesSent, codec_id: s.codecId ?? null });
      }
      if (s.type === 'codec') out.codecs[s.id] = `${s.mimeType}/${s.clockRate} pt=${s.payloadType}`;
    });
    out.ice = c.pc.iceConnectionState;
    out.directions = c.pc.getTransceivers().map((t) => t.currentDirection);
    return out;
  }

  const commands = {
    async register({ ws, user, password, domain }) {
      audioCtx = new AudioContext({ sampleRate: 48000 });
      // Worklet scripts are not fetched through the page's request
      // interception: load it from a blob.
      const meter = await (await fetch('/tone-meter.js')).text();
      const url = URL.createObjectURL(new Blob([meter], { type: 'text/javascript' }));
      await audioCtx.audioWorklet.addModule(url);
      URL.revokeObjectURL(url);
      await audioCtx.resume();
      ua = new JsSIP.UA({
        sockets: [tracedSocket(ws)],
        uri: `sip:${user}@${domain}`,
        password,
        register: true,
        session_timers: true,
        user_agent: `JsSIP ${JsSIP.version} (test peer)`,
      });
      ua.on('connected', () => emit('connected'));
      ua.on('disconnected', (e) => emit('disconnected', { error: !!e.error }));
      ua.on('registered', () => emit('registered'));
      ua.on('registrationFailed', (e) =>
        emit('registration_failed', { cause: e.cause, status: e.response ? e.response.status_code : null }),
      );
      ua.on('newRTCSession', ({ originator, session, request }) => {
        if (originator === 'local') return; // named by `call` or `accept_refer`
        const c = track(session);
        const origin = origins.get(session) || {};
        emit('incoming', {
          call: c.id,
          from: session.remote_identity.uri.toString(),
          replaces: origin.replaces || null,
          replaces_header: request.getHeader('Replaces') || null,
        });
      });
      ua.start();
      return { version: JsSIP.version };
    },
    async call({ target, extra_headers }) {
      const stream = await microphone();
      const session = ua.call(target, { ...sessionOptions(stream), extraHeaders: extra_headers || [] });
      return { call: track(session).id };
    },
    async answer({ call: id }) {
      const stream = await microphone();
      call(id).session.answer(sessionOptions(stream));
      return {};
    },
    async hangup({ call: id, status }) {
      call(id).session.terminate(status ? { status_code: status } : {});
      return {};
    },
    async hold({ call: id }) {
      return { sent: call(id).session.hold() };
    },
    async unhold({ call: id }) {
      return { sent: call(id).session.unhold() };
    },
    async dtmf({ call: id, digits, transport_type, duration, inter_tone_gap }) {
      call(id).session.sendDTMF(digits, {
        transportType: transport_type || 'INFO',
        duration: duration || undefined,
        interToneGap: inter_tone_gap || undefined,
      });
      return {};
    },
    async info({ call: id, content_type, body }) {
      call(id).session.sendInfo(content_type, body);
      return {};
    },
    // Sends REFER; `replaces` names another call of this page (attended
    // transfer). The REFER's answer comes as `refer_request`, the NOTIFYs as
    // `refer_notify` ({kind: trying|progress|accepted|failed, status}).
    async refer({ call: id, target, replaces }) {
      const c = call(id);
      const notify = (kind) => (e) =>
        emit('refer_notify', {
          call: id,
          kind,
          status: Number(e.status_line.status_code),
          reason: e.status_line.reason_phrase,
        });
      const subscriber = c.session.refer(target, {
        replaces: replaces ? call(replaces).session : undefined,
        eventHandlers: {
          requestSucceeded: (e) => emit('refer_request', { call: id, ok: true, status: e.response.status_code }),
          requestFailed: (e) =>
            emit('refer_request', {
              call: id,
              ok: false,
              status: e.response ? e.response.status_code : null,
              cause: e.cause,
            }),
          trying: notify('trying'),
          progress: notify('progress'),
          accepted: notify('accepted'),
          failed: notify('failed'),
        },
      });
      return { sent: subscriber !== false };
    },
    // Accepts the REFER received in `call`: JsSIP calls the Refer-To target
    // (with its Replaces) and NOTIFYs the referrer; the new call is returned.
    async accept_refer({ call: id }) {
      const c = call(id);
      if (!c.refer) throw new Error(`no REFER received in ${id}`);
      const stream = await microphone();
      let created = null;
      c.refer.accept((s) => {
        created = track(s);
      }, sessionOptions(stream));
      c.refer = null;
      if (!created) throw new Error('JsSIP did not start the referred call (call not confirmed?)');
      emit('refer_call', { call: id, new_call: created.id });
      return { call: created.id };
    },
    async measure_tone({ call: id, freq, ms }) {
      return measure(call(id), freq, Math.max(1, Math.round((ms || 500) / 20)));
    },
    async stats({ call: id }) {
      return stats(call(id));
    },
  };

  window.peer = {
    async run(cmd, args) {
      const f = commands[cmd];
      if (!f) throw new Error(`unknown command ${cmd}`);
      if (cmd !== 'register' && !ua) throw new Error('register first');
      return f(args || {});
    },
  };
})();

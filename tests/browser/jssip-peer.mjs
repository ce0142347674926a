#!/usr/bin/env node
// A real browser SIP peer for the integration tests: JsSIP in Debian's
// headless Chromium, driven by playwright-core.
//
//   node jssip-peer.mjs [--tone-hz 1000]
//
// Each JsSIP user agent lives in its own page, served from http://localhost/
// by request interception (no server socket): the page is a secure context,
// so getUserMedia works. Chromium's fake microphone plays a sine of
// --tone-hz from a generated WAV file; WebRTC may use loopback candidates.
// The browser talks only to the ws:// URI a test gives it.
//
// Standard input: one JSON command a line, {"id": N, "cmd": "...", "ua":
// "name", ...arguments}. Every command is answered by
// {"event": "result", "id": N, "ok": true, "value": ...} or
// {"event": "result", "id": N, "ok": false, "error": "..."}.
// Commands (arguments): register (ua, ws, user, password, domain) opens the
// page for `ua`; then, with ua: call (target, extra_headers), answer (call),
// hangup (call, status), hold (call), unhold (call), dtmf (call, digits,
// transport_type INFO|RFC2833, duration, inter_tone_gap), info (call,
// content_type, body), refer (call, target, replaces), accept_refer (call),
// measure_tone (call, freq, ms), stats (call); quit.
// Standard output: one JSON event a line, {"event": "...", "ua": "name", ...}
// (see peer-page.js): ready, registered, incoming, progress, accepted,
// confirmed, ended, failed, hold, unhold, dtmf and info (received by SIP
// INFO), heard_dtmf (DTMF tones in the received audio), sip (every SIP
// message on the wire, both ways), refer, refer_request, refer_notify,
// refer_call, replaces, ice, first_rtp (a call's first RTP packet, with
// after_accepted_ms from its `accepted`), ...; page_error and fatal when the peer cannot
// go on. Standard error: diagnostics (the browser's console).
// End of standard input closes the browser and exits.

import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const ORIGIN = 'http://localhost';

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const fatal = (error) => {
  out({ event: 'fatal', error });
  process.stderr.write(`jssip-peer: ${error}\n`);
  process.exit(2);
};

function argument(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

// One second of a sine (a whole number of periods, so Chromium's looping of
// the file is seamless), 16-bit mono 48 kHz, at -12 dBFS.
function toneWav(hz) {
  const rate = 48000;
  const samples = rate;
  const data = Buffer.alloc(samples * 2);
  for (let n = 0; n < samples; n++) {
    data.writeInt16LE(Math.round(0.25 * 32767 * Math.sin((2 * Math.PI * hz * n) / rate)), n * 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8);
  header.write('fmt ', 12);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

async function main() {
  const toneHz = Number(argument('tone-hz', '1000'));
  if (!Number.isInteger(toneHz) || toneHz < 100 || toneHz > 8000) fatal(`--tone-hz must be a whole number of Hz`);
  if (!existsSync(CHROMIUM)) fatal(`${CHROMIUM} not found: apt-get install chromium (scripts/install-deps.sh)`);
  let chromium;
  let esbuild;
  try {
    ({ chromium } = await import('playwright-core'));
    esbuild = await import('esbuild');
    await import('jssip');
  } catch (e) {
    fatal(`node modules missing (run npm ci in ${HERE}): ${e.message}`);
  }

  // JsSIP ships CommonJS only: bundle it for the page.
  const bundle = await esbuild.build({
    entryPoints: [join(HERE, 'node_modules/jssip/lib/JsSIP.js')],
    bundle: true,
    write: false,
    format: 'iife',
    globalName: 'JsSIP',
    platform: 'browser',
    logLevel: 'silent',
  });
  const files = {
    '/': { type: 'text/html', body: '<!doctype html><title>jssip peer</title><script src="/jssip.js"></script><script src="/peer-page.js"></script>' },
    '/jssip.js': { type: 'text/javascript', body: bundle.outputFiles[0].text },
    '/peer-page.js': { type: 'text/javascript', body: readFileSync(join(HERE, 'peer-page.js'), 'utf8') },
    '/tone-meter.js': { type: 'text/javascript', body: readFileSync(join(HERE, 'tone-meter.js'), 'utf8') },
  };

  const dir = mkdtempSync(join(tmpdir(), 'jssip-peer-'));
  const wav = join(dir, 'tone.wav');
  writeFileSync(wav, toneWav(toneHz));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // playwright-core gives the browser a fresh, empty profile directory.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--allow-loopback-in-peer-connection',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`,
      '--autoplay-policy=no-user-gesture-required',
      // Host candidates with their addresses, not mDNS names; and the page
      // (served by interception, so of no address space) may open its
      // WebSocket to Kamailio on 127.0.0.1.
      '--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks',
    ],
  });
  const context = await browser.newContext();
  await context.route(`${ORIGIN}/**`, (route) => {
    const file = files[new URL(route.request().url()).pathname];
    if (file) route.fulfill({ status: 200, contentType: file.type, body: file.body });
    else route.fulfill({ status: 404, body: 'not found' });
  });

  const pages = new Map();
  async function openPage(ua) {
    const page = await context.newPage();
    page.on('console', (m) => process.stderr.write(`[${ua} console.${m.type()}] ${m.text()}\n`));
    page.on('pageerror', (e) => {
      process.stderr.write(`[${ua} page error] ${e.stack || e}\n`);
      out({ event: 'page_error', ua, error: String(e) });
    });
    page.on('crash', () => out({ event: 'page_error', ua, error: 'page crashed' }));
    await page.exposeFunction('peerEvent', (ev) => out({ ...ev, ua }));
    await page.goto(`${ORIGIN}/`);
    pages.set(ua, page);
    return page;
  }

  let closing = false;
  async function quit(code) {
    if (closing) return;
    closing = true;
    await browser.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  }

  async function run(msg) {
    const { id, cmd, ua, ...args } = msg;
    try {
      if (cmd === 'quit') return quit(0);
      let page = pages.get(ua);
      if (cmd === 'register') {
        if (page) throw new Error(`ua ${ua} is registered already`);
        page = await openPage(ua);
      }
      if (!page) throw new Error(`no ua ${JSON.stringify(ua)}: register it first`);
      const value = await page.evaluate(([c, a]) => window.peer.run(c, a), [cmd, args]);
      out({ event: 'result', id, ok: true, value: value ?? null });
    } catch (e) {
      out({ event: 'result', id, ok: false, error: String(e.message || e) });
    }
  }

  browser.on('disconnected', () => {
    if (!closing) fatal('the browser went away');
  });
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    let msg;
    try {
      msg = JSON.parse(line);
    } catch (e) {
      out({ event: 'result', id: null, ok: false, error: `not JSON: ${e.message}` });
      return;
    }
    run(msg);
  });
  lines.on('close', () => quit(0));
  out({ event: 'ready', chromium: browser.version(), tone_hz: toneHz });
}

main().catch((e) => fatal(e.stack || String(e)));

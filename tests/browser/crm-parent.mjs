#!/usr/bin/env node
// CRM pages in Debian's headless Chromium, driven by playwright-core, for the
// tests of webphone's iframe widget pages (src/control/pages/).
//
//   node crm-parent.mjs
//
// The CRM pages in crm/ are served from http://localhost/crm/ by request
// interception (no server socket); each is written as a CRM integrating the
// vendor's widget would write it. Whatever such a page receives from the
// widget it hands to `crmSaw(data)`, reported here as a `message` event. The
// browser talks only to the URLs a test gives it (webphone's control server
// on 127.0.0.1).
//
// Standard input: one JSON command a line, {"id": N, "cmd": "...", "ua":
// "tab name", ...arguments} (`ua` as for jssip-peer.mjs, whose Rust side
// this shares). Every command is answered by {"event": "result",
// "id": N, "ok": true, "value": ...} or {..., "ok": false, "error": "..."}.
// Commands: open (ua, url) opens a tab at url; post (ua, frame, message)
// calls `crmPost(message)` in the CRM's frame; click (ua, frame, text)
// clicks the button labelled text in a frame; `frame`, when given, is a
// part of the frame's URL (default: the tab's top frame).
// Standard output: one JSON event a line: ready, message (ua, data),
// page_error and fatal. Standard error: the pages' consoles.
// End of standard input closes the browser and exits.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = '/usr/bin/chromium';

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const fatal = (error) => {
  out({ event: 'fatal', error });
  process.stderr.write(`crm-parent: ${error}\n`);
  process.exit(2);
};

async function main() {
  if (!existsSync(CHROMIUM)) fatal(`${CHROMIUM} not found: apt-get install chromium (scripts/install-deps.sh)`);
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    fatal(`node modules missing (run npm ci in ${HERE}): ${e.message}`);
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // The CRM (served by interception) embeds pages of 127.0.0.1.
      '--disable-features=LocalNetworkAccessChecks',
    ],
  });
  const context = await browser.newContext();
  await context.route('http://localhost/**', (route) => {
    const path = new URL(route.request().url()).pathname;
    const file = path.startsWith('/crm/') && !path.includes('..') ? join(HERE, path) : null;
    if (file && existsSync(file)) route.fulfill({ status: 200, contentType: 'text/html', body: readFileSync(file, 'utf8') });
    else route.fulfill({ status: 404, body: 'not found' });
  });

  const pages = new Map();
  const frameOf = (name, part) => {
    const page = pages.get(name);
    if (!page) throw new Error(`no page ${name}`);
    if (!part) return page.mainFrame();
    const frame = page.frames().find((f) => f.url().includes(part));
    if (!frame) throw new Error(`no frame of ${name} at ${part}: ${page.frames().map((f) => f.url()).join(' ')}`);
    return frame;
  };

  async function run(msg) {
    switch (msg.cmd) {
      case 'open': {
        const page = await context.newPage();
        page.on('console', (m) => process.stderr.write(`[${msg.ua} console.${m.type()}] ${m.text()}\n`));
        page.on('pageerror', (e) => {
          process.stderr.write(`[${msg.ua} page error] ${e.stack || e}\n`);
          out({ event: 'page_error', ua: msg.ua, error: String(e) });
        });
        await page.exposeFunction('crmSaw', (data) => out({ event: 'message', ua: msg.ua, data }));
        pages.set(msg.ua, page);
        await page.goto(msg.url);
        return null;
      }
      case 'post':
        return frameOf(msg.ua, msg.frame).evaluate((m) => window.crmPost(m), msg.message);
      case 'click':
        await frameOf(msg.ua, msg.frame).getByRole('button', { name: msg.text, exact: true }).first().click();
        return null;
      default:
        throw new Error(`unknown command ${msg.cmd}`);
    }
  }

  out({ event: 'ready' });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let msg;
    try {
      msg = JSON.parse(line);
    } catch (e) {
      out({ event: 'result', id: null, ok: false, error: `not JSON: ${e.message}` });
      continue;
    }
    try {
      out({ event: 'result', id: msg.id, ok: true, value: (await run(msg)) ?? null });
    } catch (e) {
      out({ event: 'result', id: msg.id, ok: false, error: String(e.message || e) });
    }
  }
  await browser.close();
}

main().catch((e) => fatal(String(e.stack || e)));

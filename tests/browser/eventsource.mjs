// A real EventSource in headless Chromium against the gateway.
//
// Env: GATEWAY_STREAM_URL (the full stream URL for the allowed page),
//      GATEWAY_OTHER_URL (a stream URL for the page on another origin),
//      ALLOWED_PAGE, OTHER_PAGE (page URLs on the two origins).
// Prints one JSON object: what each page saw.
import { chromium } from 'playwright-core';

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// Opens an EventSource, records every message and error, and waits until the source
// is CLOSED (the gateway's 204 on the automatic reconnect closes it) or a deadline.
async function watch(page, url, deadlineMs) {
  return page.evaluate(([url, deadlineMs]) => new Promise((resolve) => {
    const seen = { messages: [], ids: [], errors: [], opens: 0, finalState: null };
    const es = new EventSource(url);
    const start = performance.now();
    const done = () => {
      seen.finalState = es.readyState;
      seen.elapsedMs = Math.round(performance.now() - start);
      es.close();
      resolve(seen);
    };
    es.onopen = () => { seen.opens += 1; };
    es.onmessage = (e) => { seen.messages.push(e.data); seen.ids.push(e.lastEventId); };
    es.onerror = () => {
      seen.errors.push(es.readyState);
      if (es.readyState === EventSource.CLOSED) done();
    };
    setTimeout(done, deadlineMs);
  }), [url, deadlineMs]);
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: FLAGS });
try {
  const context = await browser.newContext();
  const allowed = await context.newPage();
  await allowed.goto(process.env.ALLOWED_PAGE);
  const allowedSeen = await watch(allowed, process.env.GATEWAY_STREAM_URL, 12000);

  const other = await context.newPage();
  const consoleErrors = [];
  other.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  await other.goto(process.env.OTHER_PAGE);
  const otherSeen = await watch(other, process.env.GATEWAY_OTHER_URL, 6000);
  const fetchResult = await other.evaluate(async (url) => {
    try { const r = await fetch(url); return `status ${r.status}`; } catch (e) { return `blocked: ${e.name}`; }
  }, process.env.GATEWAY_OTHER_URL);
  otherSeen.fetch = fetchResult;
  otherSeen.consoleErrors = consoleErrors;

  console.log(JSON.stringify({ allowed: allowedSeen, other: otherSeen }));
} finally {
  await browser.close();
}

// The demo page that `picasso-sim serve` puts up, in headless Chromium: a streamed
// answer with the corrected policy, then a network drop mid-stream and the fallback
// answer replacing the partial text. Takes a screenshot.
//
// Env: DEMO_URL (the page), SCREENSHOT (where to write the PNG).
// Prints one JSON object: what the bubbles showed.
import { chromium } from 'playwright-core';

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: FLAGS });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(process.env.DEMO_URL);
  await page.waitForFunction(() => document.querySelector('#status').textContent.includes('streams via'), null, { timeout: 10000 });

  const lastBot = () => page.evaluate(() => [...document.querySelectorAll('.bubble.bot')].pop()?.textContent ?? null);
  const send = async (text, fault, until, policy = 'corrected') => {
    await page.selectOption('#policy', policy);
    await page.selectOption('#fault', fault);
    await page.fill('#input', text);
    await page.click('button[type=submit]');
    await page.waitForFunction((u) => document.querySelector('#log').textContent.includes(u), until, { timeout: 20000 });
  };

  await send('Hello', 'none', 'end: answer complete');
  const streamed = await lastBot();
  await send('What do you do?', 'network-drop', 'fallback answer shown');
  const fallback = await lastBot();
  const log = await page.evaluate(() => document.querySelector('#log').textContent);
  await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });

  // widgets/corrected/widget.js, imported unchanged by a fresh page.
  await page.goto(process.env.DEMO_URL);
  await page.waitForFunction(() => document.querySelector('#status').textContent.includes('streams via'), null, { timeout: 10000 });
  await send('Hello', 'none', 'end: answer complete', 'js-corrected');
  const jsStreamed = await lastBot();
  await send('What do you do?', 'network-drop', 'fallback answer shown', 'js-corrected');
  const jsFallback = await lastBot();
  const jsBots = await page.evaluate(() => [...document.querySelectorAll('.bubble.bot')].map((b) => b.textContent));
  const jsLog = await page.evaluate(() => document.querySelector('#log').textContent);
  console.log(JSON.stringify({ streamed, fallback, log, errors, js: { streamed: jsStreamed, fallback: jsFallback, bots: jsBots, log: jsLog } }));
} finally {
  await browser.close();
}

// Drives the gateway's Swagger UI in headless Debian Chromium (playwright-core,
// no downloaded browser): lists the operations, authorizes with a demo JWT and
// sends a real document through "Try it out", expecting 202 accepted.
//
//   node swagger.mjs http://127.0.0.1:8080
//
// Env: CHROMIUM (browser binary, default /usr/bin/chromium), SCREENSHOT (PNG
// path written on failure). Prints one JSON summary line on success; exits 1
// with a message (and the summary so far) on any failure.
import { chromium } from 'playwright-core';

// Each wait/click may take up to 30 s; the run as a whole is cut off at 70 s
// (85 s with the failure screenshot and shutdown), inside the Go test's 90 s.
// Both are hang guards, not speed checks: the run takes ~20 s on a busy
// 2-core machine, ~45 s with it saturated (load average above 20).
const STEP_TIMEOUT_MS = 30_000;
const WHOLE_RUN_MS = 70_000;

// Operations the published API must show, as Swagger UI renders them.
const REQUIRED_OPERATIONS = [
  ['POST', '/v1/documents'],
  ['POST', '/FHIR/STU3/$process-message'],
  ['GET', '/v1/messages/{id}'],
  ['GET', '/v1/messages'],
];


const summary = { ok: false, step: 'start', stepsMs: {} };
const consoleErrors = [];
let stepStarted = Date.now();

// step records how long the previous step took, so a slow run shows where.
function step(name) {
  const now = Date.now();
  if (summary.step !== 'start') summary.stepsMs[summary.step] = now - stepStarted;
  summary.step = name;
  stepStarted = now;
}

function fail(message) {
  const err = new Error(message);
  err.assertion = true;
  throw err;
}

// Swagger UI breaks long paths with zero-width spaces / <wbr>; compare without them.
const cleanPath = (s) => s.replace(/[\u200b\s]/g, '');

async function listedOperations(page) {
  return page.$$eval('.opblock', (blocks) =>
    blocks.map((b) => {
      const method = b.querySelector('.opblock-summary-method')?.textContent ?? '';
      const p = b.querySelector('.opblock-summary-path');
      return { method: method.trim().toUpperCase(), path: p?.getAttribute('data-path') ?? p?.textContent ?? '' };
    }),
  );
}

async function checkOperations(page) {
  step('list operations');
  await page.locator('.opblock .opblock-summary-path').first().waitFor({ timeout: STEP_TIMEOUT_MS });
  const ops = (await listedOperations(page)).map((o) => ({ method: o.method, path: cleanPath(o.path) }));
  const missing = REQUIRED_OPERATIONS.filter(([m, p]) => !ops.some((o) => o.method === m && o.path === p));
  if (missing.length > 0) {
    fail(`Swagger UI does not list ${missing.map((o) => o.join(' ')).join(', ')}; it lists ${ops.map((o) => `${o.method} ${o.path}`).join(', ')}`);
  }
  summary.operations = REQUIRED_OPERATIONS.map((o) => o.join(' '));
  summary.operationsListed = ops.length;
}

async function authorize(page, base) {
  step('fetch demo token');
  const res = await page.request.get(new URL('/demo/token', base).href, { timeout: STEP_TIMEOUT_MS });
  if (res.status() !== 200) fail(`GET /demo/token returned ${res.status()}`);
  const token = (await res.text()).trim();
  if (token.split('.').length !== 3) fail('GET /demo/token did not return a compact JWT');

  step('authorize dialog');
  await page.locator('.auth-wrapper .btn.authorize').click({ timeout: STEP_TIMEOUT_MS });
  const dialog = page.locator('.modal-ux');
  await dialog.waitFor({ timeout: STEP_TIMEOUT_MS });
  const scheme = dialog.locator('.auth-container').filter({ hasText: 'BearerAuth' });
  if ((await scheme.count()) !== 1) fail('Authorize dialog has no BearerAuth scheme');
  const schemeText = await scheme.innerText();
  if (!/apiKey/i.test(schemeText) || !/Authorization/.test(schemeText)) {
    fail(`BearerAuth is not shown as an apiKey in the Authorization header: ${JSON.stringify(schemeText)}`);
  }
  await scheme.locator('input').first().fill(`Bearer ${token}`, { timeout: STEP_TIMEOUT_MS });
  await scheme.locator('button.authorize, button[type=submit]').first().click({ timeout: STEP_TIMEOUT_MS });
  // Once authorized Swagger UI swaps the Authorize button for Logout.
  await scheme.locator('button.btn', { hasText: 'Logout' }).waitFor({ timeout: STEP_TIMEOUT_MS });
  await dialog.locator('button.btn-done, button:has-text("Close")').first().click({ timeout: STEP_TIMEOUT_MS });
  await dialog.waitFor({ state: 'detached', timeout: STEP_TIMEOUT_MS });
  if (!(await page.locator('.auth-wrapper .btn.authorize.locked').count())) {
    fail('Authorize button is not shown as locked after authorizing');
  }
  summary.authorized = 'BearerAuth';
}

// describeExample notes what Swagger UI pre-filled (informational: the run
// replaces it with a known-good request).
function describeExample(text) {
  try {
    const example = JSON.parse(text);
    return { json: true, documentDataType: Array.isArray(example.documents?.[0]?.data) ? 'array' : typeof example.documents?.[0]?.data };
  } catch {
    return { json: false };
  }
}

async function sendDocument(page) {
  step('expand POST /v1/documents');
  const op = page
    .locator('.opblock.opblock-post')
    .filter({ has: page.locator('.opblock-summary-path[data-path="/v1/documents"]') });
  if ((await op.count()) !== 1) fail(`expected one POST /v1/documents block, found ${await op.count()}`);
  await op.locator('.opblock-summary').first().click({ timeout: STEP_TIMEOUT_MS });
  await op.locator('.try-out__btn').click({ timeout: STEP_TIMEOUT_MS });

  step('fill request body');
  const contentType = op.locator('.body-param-content-type select');
  if (await contentType.count()) {
    await contentType.selectOption('application/json', { timeout: STEP_TIMEOUT_MS });
  }
  const textarea = op.locator('textarea.body-param__text');
  await textarea.waitFor({ timeout: STEP_TIMEOUT_MS });
  // The documented example is sent exactly as Swagger UI pre-fills it: a
  // newcomer's first "Try it out" must be accepted as is.
  summary.exampleBody = describeExample(await textarea.inputValue());
  if (!summary.exampleBody.json || summary.exampleBody.documentDataType !== 'string') {
    fail(`the pre-filled request example is not a usable Send Document request: ${JSON.stringify(summary.exampleBody)}`);
  }

  step('execute');
  const sent = page.waitForResponse(
    (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/v1/documents',
    { timeout: STEP_TIMEOUT_MS },
  );
  sent.catch(() => {}); // if the click fails, that error is the one to report
  await op.locator('.btn.execute').click({ timeout: STEP_TIMEOUT_MS });
  const response = await sent;
  const authHeader = (await response.request().headerValue('authorization')) ?? '';
  if (!authHeader.startsWith('Bearer ')) fail('the executed request did not carry "Authorization: Bearer <token>"');
  const reqType = (await response.request().headerValue('content-type')) ?? '';
  summary.request = { authorization: 'Bearer <jwt>', contentType: reqType };

  step('read response');
  const live = op.locator('.live-responses-table .response');
  await live.first().waitFor({ timeout: STEP_TIMEOUT_MS });
  const statusShown = (await live.first().locator('.response-col_status').innerText()).trim();
  const bodyShown = await live
    .first()
    .locator('.response-col_description pre')
    .first()
    .innerText({ timeout: STEP_TIMEOUT_MS });
  summary.response = { networkStatus: response.status(), statusShown };
  if (statusShown !== '202') fail(`Swagger UI shows status ${statusShown}, want 202; body: ${bodyShown.slice(0, 500)}`);
  if (!/"status"\s*:\s*"accepted"/.test(bodyShown)) fail(`response body does not say "status": "accepted": ${bodyShown.slice(0, 500)}`);
  let parsed;
  try {
    parsed = JSON.parse(bodyShown);
  } catch {
    fail(`response body shown is not JSON: ${bodyShown.slice(0, 500)}`);
  }
  if (typeof parsed.id !== 'string' || parsed.id === '') fail('response body has no message id');
  summary.response.status = parsed.status;
  summary.response.id = parsed.id;
  summary.response.links = parsed.links ? Object.keys(parsed.links) : [];
}

// screenshot saves the whole page, or just the viewport when the page is too
// busy for a full-page capture; a failed capture is noted, not fatal.
async function screenshot(page, file) {
  for (const fullPage of [true, false]) {
    try {
      await page.screenshot({ path: file, fullPage, timeout: 5_000 });
      summary.screenshot = file;
      return;
    } catch (e) {
      summary.screenshotError = e.message.split('\n')[0];
    }
  }
}

async function run(base, onPage) {
  step('launch chromium');
  // launch() gives each run a fresh, throw-away --user-data-dir.
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: STEP_TIMEOUT_MS,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  onPage(browser, page);
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(e.message));

  step('open /docs');
  const nav = await page.goto(new URL('/docs', base).href, { waitUntil: 'domcontentloaded', timeout: STEP_TIMEOUT_MS });
  const landed = new URL(page.url());
  if (landed.pathname !== '/swagger/index.html') fail(`/docs led to ${landed.pathname}, want /swagger/index.html`);
  if (!nav || nav.status() !== 200) fail(`/swagger/index.html returned ${nav?.status()}`);
  summary.docs = landed.pathname;
  await checkOperations(page);
  const schemaErrors = page.locator('.errors-wrapper');
  if (await schemaErrors.count()) {
    fail(`Swagger UI reports errors in the OpenAPI document: ${(await schemaErrors.innerText()).slice(0, 500)}`);
  }
  await authorize(page, base);
  await sendDocument(page);
  step('done');
}

async function main() {
  const base = process.argv[2];
  if (!base || !/^https?:\/\//.test(base)) {
    console.error('usage: node swagger.mjs <gateway base URL, e.g. http://127.0.0.1:8080>');
    process.exit(2);
  }
  const started = Date.now();
  let browser;
  let page;
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`the browser check did not finish within ${WHOLE_RUN_MS / 1000} s`), { assertion: true })),
      WHOLE_RUN_MS,
    );
  });
  // Last resort if closing Chromium itself hangs.
  setTimeout(() => {
    console.error('FAIL: browser check hung while shutting down');
    process.exit(1);
  }, WHOLE_RUN_MS + 15_000).unref();

  const flow = run(base, (b, p) => {
    browser = b;
    page = p;
  });
  flow.catch(() => {}); // after a deadline, its late rejection is expected
  let code = 0;
  try {
    await Promise.race([flow, deadline]);
    summary.ok = true;
  } catch (err) {
    code = 1;
    summary.error = err.assertion ? err.message : `${err.name}: ${err.message.split('\n')[0]}`;
    if (page && process.env.SCREENSHOT) {
      await screenshot(page, process.env.SCREENSHOT);
    }
  } finally {
    clearTimeout(timer);
    summary.durationMs = Date.now() - started;
    if (consoleErrors.length) summary.consoleErrors = consoleErrors.slice(0, 5);
    await browser?.close().catch(() => {});
  }
  if (code !== 0) {
    console.error(`FAIL at step "${summary.step}": ${summary.error}`);
    console.log(JSON.stringify(summary));
    process.exit(code);
  }
  console.log(JSON.stringify(summary));
}

await main();

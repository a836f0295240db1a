// The browser demo, driven headless: page 1 on http://127.0.0.1:8001 downloads
// a model file from a static server and stores it in costore; page 2 on
// http://localhost:8002 asks for the same hash; the consent agent answers
// (costore-test-agent here, the costore-consent dialog for a person); page 2
// gets the bytes from the store, without a download. Prints what happened.
//
//   node demo.mjs           headless, against $DBUS_SESSION_BUS_ADDRESS (run by ./run)
//   node demo.mjs --serve   only serve the two pages, for a browser with the extension
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as lib from '../../tests/browser/lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const model = process.env.COSTORE_DEMO_MODEL ||
  path.join(here, '../../../shared/data/models/silero_vad_16k_op15.onnx');
const page = (name) => ({ body: fs.readFileSync(path.join(here, name)), type: 'text/html' });
const script = { body: fs.readFileSync(path.join(here, 'demo.js')), type: 'text/javascript' };

const site1 = await lib.startServer('127.0.0.1', 8001, {
  '/': page('page1.html'), '/demo.js': script,
  '/models/silero_vad_16k_op15.onnx': { file: model },
});
const site2 = await lib.startServer('localhost', 8002, { '/': page('page2.html'), '/demo.js': script });
const modelPath = '/models/silero_vad_16k_op15.onnx';

if (process.argv.includes('--serve')) {
  console.log(`site 1: ${site1.origin}/   site 2: ${site2.origin}/   (Ctrl-C to stop)`);
  await new Promise(() => {});
}

const say = (text) => console.log(text);
const agent = await lib.startAgent(process.env.COSTORE_DEMO_ANSWER || 'allow-once');
const browser = await lib.launchBrowser();
let failed = false;
try {
  say(`costore demo: Chromium ${browser.context.browser()?.version() || ''} (headless) with the costore extension ${browser.extensionId}`);
  say(`the consent agent answers "${agent.mode}" (a person gets the costore-consent dialog instead)\n`);
  for (const [name, site] of [['page 1', site1], ['page 2', site2]]) {
    const tab = await browser.context.newPage();
    tab.on('console', (message) => {
      if (message.text().startsWith('[http')) say(`  ${name} ${message.text()}`);
    });
    say(`${name}: open ${site.origin}/`);
    await tab.goto(`${site.origin}/?auto`);
    const result = await tab.waitForFunction(() => window.demoResult, null, { timeout: 120000 }).then((h) => h.jsonValue());
    if (!result.ok) failed = true;
    if (name === 'page 2') {
      say(`\npage 2 got the model: ${result.ok ? `yes, ${result.size} bytes, SHA-256 ${result.matches ? 'matches' : 'MISMATCH'}` : `no (${result.name})`}`);
      say(`the consent agent was asked ${agent.requests.length} time(s)`);
      say(`model downloads from the static server: ${site1.count(modelPath) + site2.count(modelPath)} (page 1's only)`);
      if (!result.matches || site1.count(modelPath) + site2.count(modelPath) !== 1) failed = true;
    }
  }
  const usage = await lib.cli('usage', 'sha256:7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49');
  say(`\n$ costore usage sha256:7ed98ddb…\n${usage.stdout}`);
} finally {
  await browser.close();
  await agent.stop();
  await site1.close();
  await site2.close();
}
say(failed ? 'demo: FAILED' : 'demo: ok');
process.exit(failed ? 1 : 0);

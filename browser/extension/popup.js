// The toolbar popup: what the store holds that the current site stored, and
// a way to the manager window (costore-consent), where the user sees and
// changes everything. Only this page may list (the service worker refuses
// sites), and only for the site of the tab it was opened on.
'use strict';

const params = new URLSearchParams(location.search);

async function currentTabId() {
  // ?tab=ID: the same view for a given tab (used by the tests).
  if (params.has('tab')) return Number(params.get('tab'));
  const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
  return tab ? tab.id : undefined;
}

function formatSize(bytes) {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function show(reply) {
  const site = document.getElementById('site');
  const status = document.getElementById('status');
  const list = document.getElementById('files');
  list.replaceChildren();
  if (!reply || !reply.ok) {
    site.textContent = (reply && reply.origin) || '';
    status.textContent = `costore is not available: ${(reply && reply.message) || 'no answer'}`;
    return;
  }
  if (!reply.origin) {
    site.textContent = 'This page is not a web site.';
    status.textContent = '';
    return;
  }
  site.textContent = reply.origin;
  const files = reply.files || [];
  status.textContent = files.length === 0
    ? 'This site has stored no files in costore.'
    : `This site stored ${files.length} file${files.length === 1 ? '' : 's'}:`;
  for (const file of files) {
    const item = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = file.name || file.digest;  // text, never markup
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.textContent = `${formatSize(file.size)} · ${file.digest.slice(0, 19)}…`;
    meta.title = file.digest;
    item.append(name, meta);
    list.append(item);
  }
}

document.getElementById('manager').addEventListener('click', async () => {
  const reply = await chrome.runtime.sendMessage({ op: 'manager' });
  if (!reply || !reply.ok) {
    document.getElementById('status').textContent =
      `Cannot open the manager (${(reply && reply.message) || 'no answer'}); run costore-consent.`;
  } else {
    window.close();
  }
});

(async () => {
  const tabId = await currentTabId();
  if (tabId === undefined) return show({ ok: true, origin: null });
  show(await chrome.runtime.sendMessage({ op: 'list', tabId }));
})();

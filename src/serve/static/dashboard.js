// The dashboard's script, served from the binary as /static/dashboard.js
// so that the Content-Security-Policy can forbid inline script. Page data
// (the profile's name) comes from a JSON element, never from script text.
"use strict";
const token = document.querySelector('meta[name=dm-token]').content;
const pageData = JSON.parse((document.getElementById('dm-data') || {}).textContent || '{}');

async function api(method, path, body) {
  const r = await fetch(path, {method, headers: {'content-type': 'application/json', 'x-dm-token': token},
                               body: body === undefined ? undefined : JSON.stringify(body)});
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((j.error && (j.error.message || JSON.stringify(j.error))) || r.statusText);
  return j;
}
function watch(job, done) {
  const out = document.getElementById('progress');
  const status = document.getElementById('job-status');
  status.textContent = 'running';
  const es = new EventSource('/api/jobs/' + job + '/events');
  es.addEventListener('step', e => { const d = JSON.parse(e.data); out.textContent += `${(d.elapsed_ms/1000).toFixed(1)}s ${d.phase} ${d.message}\n`; });
  es.addEventListener('done', e => { const d = JSON.parse(e.data); status.textContent = d.status; out.textContent += d.message + '\n'; es.close(); if (done) done(d); });
}

function indexPage() {
  document.getElementById('upload').addEventListener('submit', async ev => {
    ev.preventDefault();
    const f = document.getElementById('file').files[0];
    const name = document.getElementById('name').value;
    try {
      const env = document.getElementById('envfile').files[0];
      const files = env ? {'.env': await env.text()} : {};
      await api('POST', '/api/profiles', {name, filename: f.name, content: await f.text(), files});
      location.href = '/profiles/' + encodeURIComponent(name);
    } catch (e) { document.getElementById('upload-error').textContent = e.message; }
  });
}

function profilePage(profile) {
  async function refresh() {
    const rel = await api('GET', `/api/profiles/${profile}/releases`);
    const body = document.querySelector('#releases tbody');
    body.innerHTML = '';
    for (const r of rel) {
      const tr = document.createElement('tr');
      tr.dataset.release = r.number;
      for (const v of [r.number, r.status, r.strategy, r.runs, r.started_at.slice(0, 19)]) { const td = document.createElement('td'); td.textContent = v; tr.appendChild(td); }
      const td = document.createElement('td');
      if (r.status === 'succeeded' || r.status === 'rolled_back') {
        const b = document.createElement('button'); b.textContent = 'Roll back to ' + r.runs; b.className = 'rollback';
        b.onclick = async () => watch((await api('POST', `/api/profiles/${profile}/rollback`, {to: r.number})).job, refresh);
        td.appendChild(b);
      }
      tr.appendChild(td); body.appendChild(tr);
    }
    try {
      const st = await api('GET', `/api/profiles/${profile}/status`);
      const lines = st.platform === 'swarm'
        ? st.tasks.filter(t => t.desired === 'running').map(t => `${t.swarm_service}.${t.slot} on ${t.node} release ${t.release} ${t.state} ${t.error}`)
        : st.platform === 'kubernetes'
        ? st.pods.map(p => `${p.name} release ${p.release} ${p.phase} ready=${p.ready} restarts=${p.restarts} ${p.events.join('; ')}`)
        : st.containers.map(c => `${c.name} ${c.state} ${c.health} restarts=${c.restarts}`);
      document.getElementById('status').textContent = lines.join('\n');
    } catch (e) { document.getElementById('status').textContent = e.message; }
}
document.getElementById('deploy').addEventListener('submit', async ev => {
  ev.preventDefault();
  document.getElementById('progress').textContent = '';
  try { watch((await api('POST', `/api/profiles/${profile}/deploys`, {strategy: document.getElementById('strategy').value})).job, refresh); }
  catch (e) { document.getElementById('job-status').textContent = 'refused: ' + e.message; }
});
let logStream;
document.getElementById('logs-button').addEventListener('click', () => {
  if (logStream) logStream.close();
  const out = document.getElementById('logs');
  out.textContent = '';
  const svc = encodeURIComponent(document.getElementById('log-service').value);
  logStream = new EventSource(`/api/profiles/${profile}/logs?follow=true&tail=50&service=${svc}`);
  logStream.addEventListener('line', e => {
    const d = JSON.parse(e.data);
    out.textContent = (out.textContent + `${d.container} | ${d.line}\n`).split('\n').slice(-500).join('\n');
  });
});
refresh();
}

if (document.getElementById('upload')) indexPage();
if (pageData.profile !== undefined) profilePage(encodeURIComponent(pageData.profile));

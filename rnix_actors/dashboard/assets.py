"""The dashboard's stylesheet and its one script, served inline (with a per-response nonce).

The script is plain JavaScript written for this package, no library: it strips the token
from the address bar (the cookie carries it from then on), applies live updates from the
page's Server-Sent Events stream, and sends the confirmed action buttons' POST requests with
the token in a header.
"""

CSS = """
:root{--bg:#f6f7f9;--fg:#1d2330;--mute:#6b7385;--line:#d9dde5;--card:#fff;--run:#1f8a4c;
--sus:#c27c0e;--dead:#7b8190;--bad:#c0392b;--acc:#2f5fd0;--gold:#d4a017}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,sans-serif;background:var(--bg);
color:var(--fg)}header{display:flex;align-items:center;gap:18px;padding:8px 18px;
background:#1d2330;color:#fff}header a{color:#c9d3ea;text-decoration:none;padding:4px 8px;
border-radius:4px}header a.current{background:#3a4560;color:#fff}.brand{font-weight:700;
letter-spacing:.5px}#live{margin-left:auto;font-size:18px}.live-on{color:#3ddc84}
.live-off{color:#777}main{padding:14px 18px}h1{font-size:20px;margin:4px 0 12px}
h2{font-size:16px;margin:18px 0 8px}h3{font-size:14px;margin:12px 0 6px}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:10px 12px;
margin-bottom:12px}.stats{display:flex;gap:22px;flex-wrap:wrap}.stat b{font-size:18px;
display:block}.stat span{color:var(--mute);font-size:12px}table{border-collapse:collapse;
width:100%;background:var(--card)}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid var(--line);vertical-align:top}th{font-size:12px;color:var(--mute);
font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.state{padding:1px 6px;border-radius:9px;font-size:12px;color:#fff;background:var(--dead)}
.state-running{background:var(--run)}.state-suspended{background:var(--sus)}
.state-created{background:var(--acc)}.alert{color:var(--bad)}.mute{color:var(--mute)}
.tree-name{white-space:nowrap}.l1{padding-left:22px}.l2{padding-left:40px}.l3{padding-left:58px}
.l4{padding-left:76px}.l5{padding-left:94px}.l6{padding-left:112px}.l7{padding-left:130px}
.l8{padding-left:148px}.l9{padding-left:166px}button{font:inherit;font-size:12px;
padding:2px 8px;border:1px solid var(--line);border-radius:4px;background:#fff;cursor:pointer}
button:hover{background:#eef1f7}button.danger{color:var(--bad)}#flash{margin:0;
color:var(--acc)}svg{background:var(--card);border:1px solid var(--line);border-radius:6px;
max-width:100%;height:auto}svg text{font:12px system-ui,sans-serif;fill:var(--fg)}
svg .small{font-size:10px;fill:var(--mute)}.node rect{fill:#eef2fb;stroke:#7d8fbf}
.node.sup rect{fill:#f0ecfa;stroke:#8a76c2}.node.failed rect,.node.escalated rect,
.node.giving_up rect{stroke:var(--bad);stroke-width:2}.node.running rect{stroke:var(--run)}
.edge path{fill:none;stroke:#8a93a8;stroke-width:1.5}.edge.kind-pipe path{stroke:#2f8fd0}
.edge.kind-msg path{stroke:#7a5cc2}.edge.kind-migration path{stroke:var(--bad);
stroke-dasharray:6 4}.edge.reinforced path{stroke:var(--gold);stroke-width:4}
.edge text{font-size:11px;paint-order:stroke;stroke:#fff;stroke-width:3px}
.overlap line{stroke:#49a078;stroke-dasharray:2 4;stroke-width:1.5}.link line{stroke:#8a93a8}
.band{fill:#dcefe2}.span{fill:#b9bfcc}.mean{stroke:#1d2330;stroke-width:2}
.limit{stroke:var(--bad);stroke-width:2}
.run-in{fill:var(--acc)}.run-out{fill:var(--bad)}.grid{stroke:var(--line)}
.mark{stroke-width:0}.ev-Start,.ev-Exit{fill:#1d2330}.ev-ReasonStep{fill:var(--acc)}
.ev-Suspend,.ev-Resume,.ev-Signal{fill:var(--sus)}.ev-Blocked,.ev-Denied,.ev-error{fill:var(--bad)}
.ev-other{fill:#49a078}.msg{white-space:pre-wrap;font-family:ui-monospace,monospace;
font-size:12px;margin:0}.role{font-weight:600;color:var(--mute);font-size:12px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:12px}@media(max-width:900px){
.cols{grid-template-columns:1fr}}code{font-size:12px}.procs td:last-child{white-space:nowrap}
"""

SCRIPT = r"""
(function(){
  const meta = n => document.querySelector('meta[name="rnix-' + n + '"]').content;
  const token = meta('token');
  const url = new URL(location.href);
  if (url.searchParams.has('token')) {
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  function ages() {
    const now = Date.now() / 1000;
    for (const span of document.querySelectorAll('.since')) {
      span.textContent = Math.max(0, Math.round(now - Number(span.dataset.since))) + 's';
    }
  }
  ages();
  setInterval(ages, 1000);
  let updates = 0;
  function apply(changes) {
    for (const [rid, change] of Object.entries(changes)) {
      const box = document.getElementById(rid);
      if (!box) continue;
      if (change.html !== undefined) { box.innerHTML = change.html; continue; }
      for (const key of change.del || []) {
        const gone = document.getElementById(key); if (gone) gone.remove();
      }
      for (const [key, html] of Object.entries(change.set || {})) {
        const t = document.createElement('template');
        t.innerHTML = html;
        const node = t.content.firstElementChild;
        const old = document.getElementById(key);
        if (old) old.replaceWith(node); else box.appendChild(node);
      }
      for (const key of change.order || []) {
        const node = document.getElementById(key); if (node) box.appendChild(node);
      }
    }
    ages();
    updates += 1;
    document.body.dataset.updates = String(updates);
  }
  const live = document.getElementById('live');
  const stream = new EventSource('/stream?page=' + encodeURIComponent(meta('stream')) +
                                 '&since=' + meta('version'));
  stream.addEventListener('open', () => { live.className = 'live-on'; });
  stream.addEventListener('error', () => { live.className = 'live-off'; });
  stream.addEventListener('update', e => apply(JSON.parse(e.data)));
  document.body.dataset.updates = '0';
  document.addEventListener('click', async ev => {
    const button = ev.target.closest('button[data-action]');
    if (!button) return;
    if (!confirm(button.dataset.confirm)) return;
    const flash = document.getElementById('flash');
    try {
      const response = await fetch('/api/action', {
        method: 'POST', credentials: 'same-origin',
        headers: {'Content-Type': 'application/json', 'X-Rnix-Token': token},
        body: JSON.stringify({action: button.dataset.action, pid: Number(button.dataset.pid)})
      });
      const answer = await response.json();
      if (flash) flash.textContent = answer.ok ? answer.outcome : ('error: ' + answer.error);
    } catch (err) {
      if (flash) flash.textContent = 'error: ' + err;
    }
  });
})();
"""

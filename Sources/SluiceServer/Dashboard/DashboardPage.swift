/// The dashboard: one page, no external assets, that polls `GET /api/v1/status` every two
/// seconds and draws each pipeline's state, rates, latency, dead letters and alerts, with an
/// hour of history as SVG charts. Colours are the Okabe–Ito palette (safe for colour-blind
/// readers); times are shown in the viewer's time zone.
enum DashboardPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Sluice</title>
        <style>
        :root { --blue:#0072B2; --orange:#E69F00; --red:#D55E00; --green:#009E73; --grey:#6b7280; --bg:#f8fafc; --card:#fff; --text:#111827; }
        @media (prefers-color-scheme: dark) { :root { --bg:#0f172a; --card:#1e293b; --text:#e5e7eb; --grey:#94a3b8; } }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--text); }
        header { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: baseline; padding: 1rem 1.25rem; }
        header h1 { margin: 0; font-size: 1.4rem; }
        #updated, #error { color: var(--grey); }
        #error { color: var(--red); }
        main { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 1rem; padding: 0 1.25rem 1.25rem; }
        .card { background: var(--card); border-radius: 10px; padding: 1rem; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
        .card h2 { margin: 0 0 .25rem; font-size: 1.1rem; display: flex; gap: .5rem; align-items: center; }
        .state { font-size: .75rem; padding: .1rem .5rem; border-radius: 999px; color: #fff; background: var(--grey); }
        .state.running { background: var(--blue); } .state.failed { background: var(--red); } .state.finished { background: var(--green); }
        dl { display: grid; grid-template-columns: repeat(3, 1fr); gap: .4rem .75rem; margin: .75rem 0; }
        dt { font-size: .72rem; color: var(--grey); text-transform: uppercase; letter-spacing: .03em; }
        dd { margin: 0; font-variant-numeric: tabular-nums; font-weight: 600; }
        .alerts { margin: .25rem 0 .5rem; padding: 0; list-style: none; }
        .alerts li { color: var(--red); font-weight: 600; }
        .alerts li::before { content: "▲ "; }
        figure { margin: .5rem 0 0; }
        figcaption { font-size: .75rem; color: var(--grey); display: flex; gap: .75rem; }
        .key { display: inline-block; width: .8rem; height: .25rem; vertical-align: middle; margin-right: .25rem; }
        svg { width: 100%; height: 70px; display: block; }
        .wide svg { height: 160px; }
        .card h2 a { color: inherit; }
        table { width: 100%; border-collapse: collapse; font-size: .85rem; margin: .5rem 0 1rem; }
        th, td { text-align: left; padding: .25rem .4rem; border-bottom: 1px solid rgba(127,127,127,.25); vertical-align: top; }
        th { font-size: .72rem; color: var(--grey); text-transform: uppercase; }
        td code { white-space: pre-wrap; word-break: break-all; font-size: .8rem; }
        .detail { grid-column: 1 / -1; }
        button { font: inherit; padding: .3rem .8rem; border-radius: 6px; border: 1px solid var(--grey); background: var(--card); color: var(--text); cursor: pointer; }
        button.danger { border-color: var(--red); color: var(--red); }
        .scroll { overflow-x: auto; }
        </style>
        </head>
        <body>
        <header><h1>Sluice</h1><span id="updated">loading…</span><span id="error"></span></header>
        <main id="pipelines"></main>
        <script>
        "use strict";
        const num = n => n == null ? "–" : Math.abs(n) >= 1e9 ? (n/1e9).toFixed(1)+"G" : Math.abs(n) >= 1e6 ? (n/1e6).toFixed(1)+"M" : Math.abs(n) >= 1e4 ? (n/1e3).toFixed(1)+"k" : (Math.round(n*10)/10).toString();
        const bytes = n => n == null ? "–" : n >= 1e9 ? (n/1e9).toFixed(2)+" GB" : n >= 1e6 ? (n/1e6).toFixed(1)+" MB" : n >= 1e3 ? (n/1e3).toFixed(1)+" KB" : Math.round(n)+" B";
        const secs = s => s == null || s < 0 ? "–" : s < 1 ? Math.round(s*1000)+" ms" : s < 120 ? s.toFixed(1)+" s" : s < 7200 ? Math.round(s/60)+" min" : (s/3600).toFixed(1)+" h";
        const ago = t => t == null ? "never" : secs(Date.now()/1000 - t) + " ago";
        const local = t => t == null ? "" : new Date(t*1000).toLocaleString();
        const esc = s => String(s).replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;","'":"&#39;"}[c]));
        function chart(lines, t) {
          const w = 300, h = 70, n = t.length;
          if (n < 2) return '<svg viewBox="0 0 300 70" role="img" aria-label="no data yet"></svg>';
          const max = Math.max(1e-9, ...lines.flatMap(l => l.values.filter(v => v != null && v >= 0)));
          const x = i => (i / (n - 1)) * w, y = v => h - 4 - (Math.max(v, 0) / max) * (h - 8);
          const paths = lines.map(l => '<polyline fill="none" stroke="' + l.color + '" stroke-width="2" points="' +
            l.values.map((v, i) => x(i).toFixed(1) + "," + y(v == null ? 0 : v).toFixed(1)).join(" ") + '"/>').join("");
          return '<svg viewBox="0 0 300 70" preserveAspectRatio="none" role="img" aria-label="' + esc(lines.map(l => l.label).join(", ")) + ', max ' + num(max) + '">' + paths + '</svg>';
        }
        function legend(lines, unit) { return lines.map(l => '<span><i class="key" style="background:' + l.color + '"></i>' + esc(l.label) + '</span>').join("") + '<span>' + esc(unit) + '</span>'; }
        function card(p) {
          const s = p.series, last = a => a.length ? a[a.length - 1] : null;
          const rates = [{label: "in", color: "var(--blue)", values: s.records_in_per_s}, {label: "out", color: "var(--orange)", values: s.records_out_per_s}];
          const mb = [{label: "in", color: "var(--blue)", values: s.bytes_in_per_s.map(v => v/1e6)}, {label: "out", color: "var(--orange)", values: s.bytes_out_per_s.map(v => v/1e6)}];
          const dlq = [{label: "dead letters", color: "var(--red)", values: s.dead_letter_queue}];
          return '<section class="card" data-pipeline="' + esc(p.name) + '">' +
            '<h2><a href="#/p/' + encodeURIComponent(p.name) + '"><span class="name">' + esc(p.name) + '</span></a><span class="state ' + esc(p.state) + '">' + esc(p.state) + '</span></h2>' +
            (p.alerts.length ? '<ul class="alerts">' + p.alerts.map(a => '<li class="alert">' + esc(a) + '</li>').join("") + '</ul>' : '') +
            '<dl>' +
            '<div><dt>records/s in</dt><dd data-field="records-in-rate">' + num(last(s.records_in_per_s)) + '</dd></div>' +
            '<div><dt>records/s out</dt><dd data-field="records-out-rate">' + num(last(s.records_out_per_s)) + '</dd></div>' +
            '<div><dt>in per second</dt><dd>' + bytes(last(s.bytes_in_per_s)) + '</dd></div>' +
            '<div><dt>records in</dt><dd data-field="records-in">' + num(p.records_in) + '</dd></div>' +
            '<div><dt>records out</dt><dd data-field="records-out">' + num(p.records_out) + '</dd></div>' +
            '<div><dt>bytes out</dt><dd>' + bytes(p.bytes_out) + '</dd></div>' +
            '<div><dt>latency p50</dt><dd>' + secs(p.latency_p50_seconds) + '</dd></div>' +
            '<div><dt>latency p99</dt><dd data-field="p99">' + secs(p.latency_p99_seconds) + '</dd></div>' +
            '<div><dt>dead letters</dt><dd data-field="dlq">' + num(p.dead_letter_queue) + '</dd></div>' +
            '<div><dt>last commit</dt><dd title="' + esc(local(p.last_commit)) + '">' + ago(p.last_commit) + '</dd></div>' +
            '<div><dt>schema</dt><dd>' + (p.schema_version == null ? '–' : 'v' + p.schema_version) + ' · ' + num(p.schema_drifts) + ' drifts</dd></div>' +
            '<div><dt>lag</dt><dd data-field="lag">' + (p.lag ? (p.lag.unit === "seconds" ? secs(p.lag.value) : num(p.lag.value) + ' ' + esc(p.lag.unit)) : p.last_pull ? ago(p.last_pull) : '–') + '</dd></div>' +
            '<div><dt>missing</dt><dd>' + num(p.missing_records) + '</dd></div>' +
            '</dl>' +
            (Object.keys(p.dead_letters_by_reason).length ? '<p class="reasons" data-field="reasons"><small>dead letters by reason: ' +
              Object.entries(p.dead_letters_by_reason).map(([r, n]) => esc(r) + ' ' + num(n)).join(' · ') + '</small></p>' : '') +
            '<figure>' + chart(rates, s.t) + '<figcaption>' + legend(rates, "records/s, last hour") + '</figcaption></figure>' +
            '<figure>' + chart(mb, s.t) + '<figcaption>' + legend(mb, "MB/s") + '</figcaption></figure>' +
            '<figure>' + chart(dlq, s.t) + '<figcaption>' + legend(dlq, "in the queue") + '</figcaption></figure>' +
            '</section>';
        }
        let key = sessionStorage.getItem("sluice-key");
        let dlqAfter = 0;
        const headers = () => key ? {"Authorization": "Bearer " + key} : {};
        async function get(path) {
          const r = await fetch(path, {headers: headers()});
          if (r.status === 401 || r.status === 403) {
            key = prompt("This dashboard needs an API key (sluice keys create):");
            if (key) sessionStorage.setItem("sluice-key", key);
            throw new Error("an API key is needed");
          }
          if (!r.ok) throw new Error(path + ": status " + r.status);
          return r.json();
        }
        function table(head, rows) {
          return '<div class="scroll"><table><tr>' + head.map(h => '<th>' + esc(h) + '</th>').join("") + '</tr>' +
            rows.map(r => '<tr>' + r.map(c => '<td>' + c + '</td>').join("") + '</tr>').join("") + '</table></div>';
        }
        function detail(p, d) {
          const s = p.series;
          const p99 = [{label: "p99", color: "var(--green)", values: s.p99_seconds}];
          const dur = r => r.ended_at ? secs(r.ended_at - r.started_at) : "running";
          const runs = table(["run", "status", "started", "duration", "in", "out", "dead letters", "message"], d.runs.map(r =>
            [r.id, esc(r.status), esc(local(r.started_at)), dur(r), num(r.records_in), num(r.records_out), num(r.dead_lettered), esc(r.message || "")]));
          const cp = table(["partition", "position"], d.checkpoint.map(c => ['<code>' + esc(c.partition) + '</code>', '<code>' + esc(c.position) + '</code>']));
          const letters = table(["id", "stage", "reason", "location", "attempts", "first seen", "raw"], d.dead_letters.page.map(l =>
            [l.id, esc(l.stage), esc(l.reason) + '<br><small>' + esc(l.message) + '</small>', '<code>' + esc(l.location) + '</code>', l.attempts,
             esc(local(l.first_seen)), '<code class="raw">' + esc(l.raw) + '</code>' + (l.raw_bytes > 4096 ? ' …' : '')]));
          const actions = d.writes && d.dead_letters.total > 0
            ? '<p><button id="replay">Replay all</button> <button id="drop" class="danger">Drop all</button> <span id="action"></span></p>'
            : (d.dead_letters.total > 0 ? '<p><small>Read-only: start the process with --dashboard-writes to replay and drop from here.</small></p>' : '');
          const paging = (dlqAfter ? '<button id="first">First page</button> ' : '') + (d.dead_letters.next_after ? '<button id="next">Next page</button>' : '');
          return '<section class="card detail wide" data-pipeline="' + esc(p.name) + '"><p><a href="#">← all pipelines</a></p>' +
            card(p).replace('<section class="card"', '<div').replace(/<\/section>$/, '</div>') +
            '<figure>' + chart(p99, s.t) + '<figcaption>' + legend(p99, "latency p99, seconds") + '</figcaption></figure>' +
            '<h3>Recent runs</h3>' + runs + '<h3>Checkpoint</h3>' + cp +
            '<h3 id="dead-letters">Dead letters (' + num(d.dead_letters.total) + ')</h3>' + actions + letters + paging + '</section>';
        }
        async function act(name, action) {
          if (action === "drop" && !confirm("Drop every dead letter of " + name + "? Export them first to keep a copy.")) return;
          const r = await fetch("api/v1/pipelines/" + encodeURIComponent(name) + "/dead-letters/" + action, {method: "POST", headers: headers()});
          const body = await r.json();
          const out = document.getElementById("action");
          if (out) out.textContent = r.ok ? JSON.stringify(body) : (body.detail || ("status " + r.status));
          refresh();
        }
        async function refresh() {
          try {
            const data = await get("api/v1/status");
            const route = decodeURIComponent((location.hash.match(/^#\/p\/(.+)$/) || [])[1] || "");
            const one = route && data.pipelines.find(p => p.name === route);
            const main = document.getElementById("pipelines");
            if (one) {
              const d = await get("api/v1/pipelines/" + encodeURIComponent(one.name) + "?after=" + dlqAfter);
              main.innerHTML = detail(one, d);
              const on = (id, f) => { const b = document.getElementById(id); if (b) b.onclick = f; };
              on("next", () => { dlqAfter = d.dead_letters.next_after; refresh(); });
              on("first", () => { dlqAfter = 0; refresh(); });
              on("replay", () => act(one.name, "replay"));
              on("drop", () => act(one.name, "drop"));
            } else {
              main.innerHTML = data.pipelines.map(card).join("") || "<p>No pipelines.</p>";
            }
            document.getElementById("updated").textContent = "updated " + new Date(data.generated_at * 1000).toLocaleTimeString();
            document.getElementById("error").textContent = "";
          } catch (e) {
            document.getElementById("error").textContent = "cannot reach Sluice: " + e.message;
          }
        }
        window.addEventListener("hashchange", () => { dlqAfter = 0; refresh(); });
        refresh();
        setInterval(refresh, 2000);
        </script>
        </body>
        </html>
        """#
}

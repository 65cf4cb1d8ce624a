"""The checks of scripts/check-monitoring.sh that need more than a shell (standard library only):

  monitoring_check.py work NODE_URL ADMIN_PASSWORD
      real work on a live node, so its metrics have something to count: tasks that succeed and
      fail, and a log read as server-sent events
  monitoring_check.py api-md SCRAPE
      the scrape holds every metric API.md lists, with its Prometheus type
  monitoring_check.py prometheus SCRAPE PROMETHEUS_URL MONITORING_DIR
      against a Prometheus scraping that node with alerts.yml loaded: the dashboard is a Grafana
      dashboard, every metric it or a rule names is in the scrape, every dashboard query returns
      data, every rule evaluates cleanly and none fires, and alerts-test.yml makes each alert fire
"""

import http.cookiejar
import json
import pathlib
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# API.md's list: name (as in the TYPE line) and type.
API_MD_METRICS = {
    "baton_tasks_submitted_total": "counter",
    "baton_tasks_finished_total": "counter",
    "baton_queue_depth": "gauge",
    "baton_dispatch_latency_seconds": "histogram",
    "baton_runners_connected": "gauge",
    "baton_http_requests_total": "counter",
    "baton_http_request_duration_seconds": "histogram",
    "baton_coordination_up": "gauge",
    "baton_database_up": "gauge",
    "baton_ws_connections": "gauge",
    "baton_events_delivered_total": "counter",
    "baton_build_info": "gauge",
}
# Metric names in PromQL: Baton's and the process's (label names and functions never start so).
METRIC = re.compile(r"\b(?:baton|process)_[a-z0-9_]+\b")
# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$instance": ".*", "${instance}": ".*"}
WAIT = 60


class Client:
    """JSON over HTTP with a session cookie, as the API's non-browser clients use it."""

    def __init__(self, base):
        self.base = base.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with self.opener.open(req, timeout=30) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as e:
            raise SystemExit(f"   {method} {path}: {e.code} {e.read().decode()[:300]}") from None
        return json.loads(text) if text.strip() else None

    def raw(self, path):
        with self.opener.open(self.base + path, timeout=30) as resp:
            return resp.read().decode()


def work(node, password):
    c = Client(node)
    c.call("POST", "/api/v1/auth/login", {"username": "admin", "password": password})
    pid = c.call("POST", "/api/v1/projects", {"name": "monitoring-check"})["id"]
    tasks = f"/api/v1/projects/{pid}/tasks"
    ids = []
    for script in ("echo fine", "echo fine", "echo broken; exit 3"):
        tid = c.call("POST", f"/api/v1/projects/{pid}/templates", {"name": f"t{len(ids)}", "script": script})["id"]
        ids.append(c.call("POST", tasks, {"template_id": tid})["id"])
    final = {}
    deadline = time.monotonic() + WAIT
    while len(final) < len(ids) and time.monotonic() < deadline:
        for i in ids:
            status = c.call("GET", f"{tasks}/{i}")["status"]
            if status not in ("queued", "assigned", "running"):
                final[i] = status
        time.sleep(0.2)
    if sorted(final.values()) != ["failed", "succeeded", "succeeded"]:
        raise SystemExit(f"   tasks ended {final}, not two succeeded and one failed (within {WAIT} s)")
    # A finished task's log as SSE: its line, then the end.
    stream = c.raw(f"{tasks}/{ids[0]}/log/stream")
    if "fine" not in stream or "event: end" not in stream:
        raise SystemExit(f"   the log stream lacks the line or its end: {stream[:300]!r}")
    print(f"   ran tasks {ids}: {sorted(final.values())}; streamed a log")


def parse_scrape(path):
    """Sample names and {family: type} of a Prometheus text scrape."""
    samples, types = set(), {}
    for line in pathlib.Path(path).read_text().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
        elif line and not line.startswith("#"):
            samples.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return samples, types


def api_md(scrape):
    samples, types = parse_scrape(scrape)
    errors = []
    for name, kind in API_MD_METRICS.items():
        if types.get(name) != kind:
            errors.append(f"{name}: type {types.get(name)}, not {kind}")
        wanted = name + "_bucket" if kind == "histogram" else name
        if wanted not in samples:
            errors.append(f"{name}: no sample {wanted}")
    return errors, f"{len(API_MD_METRICS)} metrics of API.md present with their types"


def prom_get(prom, path, **params):
    url = f"{prom}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as e:
        body = json.load(e)
    if body.get("status") != "success":
        raise ValueError(f"{body.get('errorType')}: {body.get('error')}")
    return body["data"]


def query(prom, expr):
    return prom_get(prom, "/api/v1/query", query=expr)["result"]


def substitute(expr):
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    if "$" in expr:
        raise ValueError(f"a Grafana variable this check does not know: {expr}")
    return expr


def dashboard_queries(dash, errors):
    """Every PromQL query of the dashboard (panels and the instance variable), as (where, expr)."""
    if not isinstance(dash.get("panels"), list) or not dash.get("title") or not dash.get("uid"):
        errors.append("grafana-dashboard.json: not a dashboard (title, uid, panels)")
        return []
    out = []
    ids = [p.get("id") for p in dash["panels"]]
    if len(set(ids)) != len(ids):
        errors.append(f"grafana-dashboard.json: panel ids repeat: {ids}")
    for p in dash["panels"]:
        where = f"panel {p.get('title')!r}"
        if not all(k in (p.get("gridPos") or {}) for k in "xywh"):
            errors.append(f"{where}: no gridPos")
        if p.get("type") == "row":
            continue
        if not p.get("targets"):
            errors.append(f"{where}: no query")
        for t in p.get("targets") or []:
            if (t.get("datasource") or p.get("datasource") or {}).get("uid") != "${datasource}":
                errors.append(f"{where}: not on the dashboard's Prometheus data source variable")
            out.append((f"{where} {t.get('refId')}", t.get("expr") or ""))
    for var in (dash.get("templating") or {}).get("list") or []:
        q = var.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"label_values\((.+),\s*\w+\)", q or "") if var.get("type") == "query" else None
        if var.get("type") == "query":
            if not m:
                errors.append(f"variable {var.get('name')}: not label_values(SELECTOR, LABEL): {q}")
            else:
                out.append((f"variable {var.get('name')}", m.group(1)))
    return out


def wait_for_rules(prom):
    """The rule groups once every rule has been evaluated at least once."""
    deadline = time.monotonic() + WAIT
    while True:
        groups = prom_get(prom, "/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        # Prometheus' zero time until a rule's first evaluation.
        evaluated = rules and all(not r.get("lastEvaluation", "0001").startswith("0001") for r in rules)
        if evaluated or time.monotonic() > deadline:
            return rules
        time.sleep(0.5)


def wait_for_samples(prom):
    """Until Prometheus holds a few scrapes of the node, so that rates have two samples."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        result = query(prom, 'count_over_time(up{job="baton"}[1m])')
        if result and float(result[0]["value"][1]) >= 5 and query(prom, 'up{job="baton"} == 1'):
            return True
        time.sleep(0.5)
    return False


def check_prometheus(scrape, prom, monitoring):
    samples, _ = parse_scrape(scrape)
    monitoring = pathlib.Path(monitoring)
    errors = []
    if not wait_for_samples(prom):
        return [f"Prometheus did not scrape the node (job baton) five times within {WAIT} s"], ""

    dash = json.loads((monitoring / "grafana-dashboard.json").read_text())
    queries = dashboard_queries(dash, errors)
    for where, expr in queries:
        for name in sorted(set(METRIC.findall(expr)) - samples):
            errors.append(f"dashboard {where}: {name} is not in the node's /metrics")
        try:
            if not query(prom, substitute(expr)):
                errors.append(f"dashboard {where}: no data on a live node: {expr}")
        except ValueError as e:
            errors.append(f"dashboard {where}: {e}")

    rules = wait_for_rules(prom)
    alerts = {r["name"] for r in rules if r["type"] == "alerting"}
    for r in rules:
        for name in sorted(set(METRIC.findall(r["query"])) - samples):
            errors.append(f"rule {r['name']}: {name} is not in the node's /metrics")
        if r.get("health") != "ok":
            errors.append(f"rule {r['name']}: {r.get('health')}: {r.get('lastError')}")
        if r["type"] == "alerting" and r.get("state") != "inactive":
            errors.append(f"rule {r['name']}: {r.get('state')} on a healthy node")
    # promtool test rules passes a test that expects nothing: each alert must be expected to fire.
    tests = (monitoring / "alerts-test.yml").read_text()
    fired = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- ", tests))
    for name in sorted(alerts - fired):
        errors.append(f"alert {name}: no case in alerts-test.yml expects it to fire")
    return errors, (f"{len(queries)} dashboard queries return data; {len(rules)} rules evaluate cleanly, "
                    f"none fires; alerts-test.yml fires each of {len(alerts)} alerts")


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "work":
        work(*args)
        return 0
    errors, summary = {"api-md": api_md, "prometheus": check_prometheus}[cmd](*args)
    for e in errors:
        print(f"   {e}", file=sys.stderr)
    if not errors:
        print(f"   {summary}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

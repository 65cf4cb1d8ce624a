"""Prepares the node that scripts/check-api.sh fuzzes, through its own API.

Waits for the node to be ready, logs in as the administrator and mints the API token the fuzzer
sends, then creates fixtures the fuzzer could not make up: a project with a template, a task that
stays queued (the node runs no runner) and one that is cancelled (its log stream ends at once), a
schedule, a secret, a member and a registered runner. Random ids would only ever reach "not found"; with these, the
fuzzer's path parameters, `template_id`s and `project_id`s name things that exist most of the
time, so its cases reach the handlers' own checks.

Writes into the work directory given as the only argument:
  schemathesis.toml  scripts/schemathesis.toml plus the fixtures as dictionaries of values
  fixtures.json      what the hooks (check_api_hooks.py) keep the fuzzer from deleting
  token              "<token id> <token>"
Environment: BASE (the node's URL), PASSWORD (the administrator's), BIN (the `baton` binary) and
RUNNER_URL (the node's runner port).
"""

import http.cookiejar
import json
import os
import subprocess
import sys
import time
import urllib.request

BASE = os.environ["BASE"]
WORK = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
# How often a generated id is a fixture's rather than random: high enough to reach the handlers,
# low enough that ids of nothing (404) are tried too.
PROBABILITY = 0.8

opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def wait_ready():
    for _ in range(600):
        try:
            if opener.open(f"{BASE}/api/ready", timeout=2).status == 200:
                return
        except OSError:
            time.sleep(0.1)
    sys.exit("the server did not become ready within a minute")


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{BASE}{path}", data, {"content-type": "application/json"}, method=method)
    with opener.open(req, timeout=10) as resp:
        text = resp.read()
    return json.loads(text) if text else None


def fixtures():
    """Creates the fixtures; returns the values of each dictionary."""
    me = call("GET", "/api/v1/users/me")
    pid = call("POST", "/api/v1/projects", {"name": "api-check"})["id"]
    project = f"/api/v1/projects/{pid}"
    tid = call("POST", f"{project}/templates", {"name": "api-check", "script": "true"})["id"]
    queued = call("POST", f"{project}/tasks", {"template_id": tid})["id"]
    cancelled = call("POST", f"{project}/tasks", {"template_id": tid})["id"]
    call("POST", f"{project}/tasks/{cancelled}/cancel")
    sid = call("POST", f"{project}/schedules", {"template_id": tid, "cron": "0 3 * * *"})["id"]
    secret = call("POST", f"{project}/secrets", {"name": "API_CHECK", "value": "fixture"})["name"]
    member = call("POST", "/api/v1/users", {"username": "api-check-member", "password": "api-check-pw"})["id"]
    call("PUT", f"{project}/members/{member}", {"role": "viewer"})
    node = call("GET", "/api/v1/cluster")["nodes"][0]["id"]
    return {
        "runner": [runner()],
        "project": [pid],
        "template": [tid],
        "task": [queued, cancelled],
        "finished_task": [cancelled],
        "schedule": [sid],
        "secret": [secret],
        "user": [member, me["id"]],
        "node": [node],
        # Values no generator would come up with by chance.
        "cron": ["0 3 * * *", "*/5 * * * *", "0 0 9 * * 1-5"],
        "timezone": ["UTC", "Europe/Berlin"],
        # The first `PATCH /users/me` that sends it changes the password, and later ones fail.
        "admin_password": [os.environ["PASSWORD"]],
    }


def runner():
    """Registers a runner the way an operator does (it never connects: its id is what counts)."""
    token = call("POST", "/api/v1/runner-registration-tokens", {})["token"]
    conf = os.path.join(WORK, "runner.toml")
    cmd = [os.environ["BIN"], "runner", "register", "--url", os.environ["RUNNER_URL"], "--token", token]
    subprocess.run(cmd + ["--name", "api-check", "--config", conf], check=True, stdout=subprocess.DEVNULL)
    return call("GET", "/api/v1/runners")["items"][0]["id"]


def toml_value(v):
    return json.dumps(v)  # a JSON string or number is a TOML one too


def config(values):
    """scripts/schemathesis.toml with the fixtures bound to the parameters that name them."""
    out = [open(os.path.join(HERE, "schemathesis.toml")).read()]
    for name, vs in values.items():
        out.append(f"\n[dictionaries.{name}]\nvalues = [{', '.join(toml_value(v) for v in vs)}]\n")

    def bind(dictionary, probability=PROBABILITY):
        return f'{{ dictionary = "{dictionary}", probability = {probability} }}'

    out.append("\n[parameters]\n")
    for param, dictionary in [
        ("path.pid", "project"),
        ("path.tid", "template"),
        ("path.sid", "schedule"),
        ("path.uid", "user"),
        ("path.name", "secret"),
        ("path.node_id", "node"),
        ("body.template_id", "template"),
        ("query.template_id", "template"),
        ("body.project_id", "project"),
        ("query.project_id", "project"),
        ("query.cron", "cron"),
        ("body.cron", "cron"),
        ("query.timezone", "timezone"),
        ("body.timezone", "timezone"),
        ("body.current_password", "admin_password"),
    ]:
        out.append(f'"{param}" = {bind(dictionary)}\n')
    # `{id}` is a task's in these, a runner's in those (and a token's in `delete_token`).
    tasks = ["get_task", "list_attempts", "get_log", "get_raw_log", "cancel_task"]
    out.append(f'\n[[operations]]\ninclude-operation-id = {json.dumps(tasks)}\n')
    out.append(f'parameters = {{ "path.id" = {bind("task")} }}\n')
    runners = ["get_runner", "update_runner", "revoke_runner"]
    out.append(f'\n[[operations]]\ninclude-operation-id = {json.dumps(runners)}\n')
    out.append(f'parameters = {{ "path.id" = {bind("runner")} }}\n')
    # A queued task's stream never ends (no runner): only the cancelled task's, which ends at once.
    out.append('\n[[operations]]\ninclude-operation-id = "stream_log"\n')
    out.append(f'parameters = {{ "path.id" = {bind("finished_task")} }}\n')
    return "".join(out)


def main():
    wait_ready()
    call("POST", "/api/v1/auth/login", {"username": "admin", "password": os.environ["PASSWORD"]})
    token = call("POST", "/api/v1/tokens", {"name": "api-check"})
    values = fixtures()
    with open(os.path.join(WORK, "schemathesis.toml"), "w") as f:
        f.write(config(values))
    # What a DELETE must not remove, by operation and path parameter: the run's own token, and
    # the fixtures (the stateful phase deletes what it creates itself).
    keep = {
        "delete_token": {"id": token["id"]},
        "delete_project": {"pid": values["project"][0]},
        "delete_template": {"tid": values["template"][0]},
        "delete_schedule": {"sid": values["schedule"][0]},
        "delete_secret": {"name": values["secret"][0]},
        "delete_user": {"uid": values["user"][0]},
        "revoke_runner": {"id": values["runner"][0]},
    }
    with open(os.path.join(WORK, "fixtures.json"), "w") as f:
        json.dump(keep, f)
    with open(os.path.join(WORK, "token"), "w") as f:
        f.write(f"{token['id']} {token['token']}\n")


main()

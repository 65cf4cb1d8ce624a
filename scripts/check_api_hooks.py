"""Schemathesis hooks of scripts/check-api.sh.

The fuzzer acts as the administrator with one API token, against fixtures that
check_api_setup.py made. It may delete anything but those: deleting its own token would turn the
rest of the run into a test of 401 answers, and deleting a fixture would leave only "not found"
for the cases that name it. Such a DELETE is sent for an id that names nothing instead, and its
answer (404) is checked like any other.
"""

import json
import os

import schemathesis

# {operation id: {path parameter: the value it must not take}}
KEEP = json.load(open(os.environ["API_CHECK_FIXTURES"]))
# No fixture, nor anything the run makes, has this id or name.
NOTHING = {int: 999_999_999, str: "API_CHECK_NOTHING"}


@schemathesis.hook
def before_call(context, case, kwargs):
    keep = KEEP.get((case.operation.definition.raw or {}).get("operationId"), {})
    for name, value in keep.items():
        sent = (case.path_parameters or {}).get(name)
        if sent is not None and str(sent) == str(value):
            case.path_parameters[name] = NOTHING[type(value)]

"""Schemathesis hooks of scripts/check-api.sh.

The fuzzer acts as the administrator with one API token. It may delete any token but that one:
deleting it would turn the rest of the run into a test of 401 answers.
"""

import os

import schemathesis

OWN_TOKEN_ID = int(os.environ["API_CHECK_TOKEN_ID"])


@schemathesis.hook("filter_path_parameters").apply_to(operation_id="delete_token")
def keep_own_token(context, path_parameters):
    # Negative cases may have no path parameters at all.
    return str((path_parameters or {}).get("id")) != str(OWN_TOKEN_ID)

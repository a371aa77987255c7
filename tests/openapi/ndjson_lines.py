"""schemathesis hooks for tests/admin_api.rs.

`GET /api/v1/audit` answers NDJSON. OpenAPI 3.1 cannot describe a stream, so
api/openapi.json gives the schema of one line, and schemathesis skips the body.
This check holds every line of such an answer to that schema instead.
"""

import json
import os

import jsonschema_rs
import schemathesis

NDJSON = "application/x-ndjson"


def _line_validators():
    with open(os.environ["CDD_OPENAPI"], encoding="utf-8") as f:
        spec = json.load(f)
    validators = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for status, answer in op.get("responses", {}).items():
                media = answer.get("content", {}).get(NDJSON)
                if media is None:
                    continue
                # The line schema's `#/components/...` references resolve
                # against the document, so it is validated inside a copy of it.
                schema = dict(media["schema"])
                schema["components"] = spec["components"]
                validators[(method.upper(), path, status)] = jsonschema_rs.validator_for(schema)
    return validators


VALIDATORS = _line_validators()


@schemathesis.check
def ndjson_lines_conform(ctx, response, case):
    if not response.headers.get("content-type", [""])[0].startswith(NDJSON):
        return
    key = (case.method.upper(), case.operation.path, str(response.status_code))
    validator = VALIDATORS.get(key)
    if validator is None:
        raise AssertionError(f"{key} answered {NDJSON}, which the description does not list")
    for n, line in enumerate(response.content.decode("utf-8").splitlines(), 1):
        entry = json.loads(line)
        errors = [e.message for e in validator.iter_errors(entry)]
        if errors:
            raise AssertionError(f"line {n} does not match its schema: {errors[0]}")

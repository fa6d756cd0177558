#!/usr/bin/env python3
"""boto3 against mock Bedrock: every operation, every pre-stream error, the stream
faults, retries, and model ids with ':' and '/'.

Usage: check_mock_bedrock.py ENDPOINT SCRIPT_JSON
  ENDPOINT     e.g. http://127.0.0.1:41234
  SCRIPT_JSON  {"model": ..., "prompt": ..., "tokens": [...]}: the scripted answer

Arms faults through the mock's /__admin/faults. Prints one line per check and exits
1 if any failed. Runs the checks in order; the mock's journal records them all.
"""

import json
import os
import sys
import urllib.request

import boto3
import botocore.eventstream
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

ENDPOINT = sys.argv[1]
SCRIPT = json.loads(sys.argv[2])
MODEL, PROMPT, TOKENS = SCRIPT["model"], SCRIPT["prompt"], SCRIPT["tokens"]

# boto3 refuses bearer auth to an http:// endpoint (bedrock-wire.md §1).
os.environ.pop("AWS_BEARER_TOKEN_BEDROCK", None)

failures = []


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} boto3 {name}{': ' + str(detail) if detail and not ok else ''}")
    if not ok:
        failures.append(name)


def client(max_attempts=3):
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="AKIDMOCK",
        aws_secret_access_key="mock-secret",
        config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts}),
    )


def arm(kind, **fields):
    fault = {"where": "bedrock", "kind": kind, **fields}
    request = urllib.request.Request(
        ENDPOINT + "/__admin/faults",
        data=json.dumps(fault).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request).read()


def messages():
    return [{"role": "user", "content": [{"text": PROMPT}]}]


def anthropic_body():
    return json.dumps({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
    })


def converse_stream_deltas(c, model=MODEL):
    response = c.converse_stream(modelId=model, messages=messages())
    deltas, events = [], []
    for event in response["stream"]:
        (name, payload), = event.items()
        events.append(name)
        if name == "contentBlockDelta":
            deltas.append(payload["delta"]["text"])
        if name == "messageStart":
            assert payload["role"] == "assistant", payload
    return deltas, events


def invoke_stream_deltas(c):
    response = c.invoke_model_with_response_stream(modelId=MODEL, body=anthropic_body())
    assert response["contentType"] == "application/json", response["contentType"]
    deltas = []
    for event in response["body"]:
        native = json.loads(event["chunk"]["bytes"])
        if native["type"] == "content_block_delta":
            deltas.append(native["delta"]["text"])
    return deltas


def run():
    c = client()
    deltas, events = converse_stream_deltas(c)
    check("ConverseStream tokens", deltas == TOKENS, deltas)
    check("ConverseStream metadata last", events[-2:] == ["messageStop", "metadata"], events)

    check("InvokeModelWithResponseStream tokens", invoke_stream_deltas(c) == TOKENS)

    out = c.converse(modelId=MODEL, messages=messages())
    text = out["output"]["message"]["content"][0]["text"]
    check("Converse text", text == "".join(TOKENS), text)
    check("Converse request id", len(out["ResponseMetadata"]["RequestId"]) == 36)
    check("Converse integer latency", isinstance(out["metrics"]["latencyMs"], int))

    out = c.invoke_model(modelId=MODEL, body=anthropic_body())
    native = json.loads(out["body"].read())
    check("InvokeModel text", native["content"][0]["text"] == "".join(TOKENS), native)

    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us." + MODEL
    check("ARN model id", converse_stream_deltas(c, arn)[0] == TOKENS)

    once = client(max_attempts=1)
    for kind, code, status in [
        ("throttling", "ThrottlingException", 429),
        ("validation", "ValidationException", 400),
        ("access_denied", "AccessDeniedException", 403),
        ("resource_not_found", "ResourceNotFoundException", 404),
        ("model_timeout", "ModelTimeoutException", 408),
        ("model_not_ready", "ModelNotReadyException", 429),
        ("service_unavailable", "ServiceUnavailableException", 503),
        ("internal", "InternalServerException", 500),
    ]:
        arm(kind)
        modeled = getattr(once.exceptions, code)
        try:
            once.converse_stream(modelId=MODEL, messages=messages())
            check(f"{code} raised", False, "no error")
        except modeled as e:
            got = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
            check(f"{code} typed", got == (code, status) and e.response["Error"]["Message"], got)
        except ClientError as e:
            check(f"{code} typed", False, e)

    # Fail twice, then succeed: boto3's standard retries get through.
    arm("throttling", attempts=1)
    arm("throttling", attempts=2)
    out = c.converse(modelId=MODEL, messages=messages())
    check("retried through", out["ResponseMetadata"]["RetryAttempts"] == 2, out["ResponseMetadata"])

    for exception in ["throttlingException", "modelStreamErrorException", "internalServerException",
                      "validationException", "serviceUnavailableException"]:
        arm("exception", after_tokens=2, exception=exception)
        got = []
        try:
            response = c.converse_stream(modelId=MODEL, messages=messages())
            for event in response["stream"]:
                if "contentBlockDelta" in event:
                    got.append(event["contentBlockDelta"]["delta"]["text"])
            check(f"stream {exception}", False, "no error")
        except EventStreamError as e:
            code = e.response["Error"]["Code"]
            check(f"stream {exception}", code == exception and got == TOKENS[:2] and e.response["Error"]["Message"],
                  (code, got))

    arm("exception", after_tokens=1, exception="modelTimeoutException")
    try:
        for _ in c.invoke_model_with_response_stream(modelId=MODEL, body=anthropic_body())["body"]:
            pass
        check("invoke stream modelTimeoutException", False, "no error")
    except EventStreamError as e:
        check("invoke stream modelTimeoutException", e.response["Error"]["Code"] == "modelTimeoutException", e)

    # Not in ConverseStream's union: the mock sends a member of it instead.
    arm("exception", after_tokens=1, exception="modelTimeoutException")
    try:
        converse_stream_deltas(c)
        check("converse stream out-of-union exception", False, "no error")
    except EventStreamError as e:
        check("converse stream out-of-union exception",
              e.response["Error"]["Code"] == "modelStreamErrorException" and e.response["Error"]["Message"], e)

    arm("corrupt_frame", after_tokens=1)
    try:
        converse_stream_deltas(c)
        check("corrupt frame", False, "no error")
    except botocore.eventstream.ChecksumMismatch:
        check("corrupt frame", True)

    arm("drop", after_tokens=2)
    try:
        converse_stream_deltas(c)
        check("dropped connection", False, "no error")
    except Exception as e:  # urllib3 ProtocolError, wrapped or not, depending on version
        check("dropped connection", "ChecksumMismatch" not in type(e).__name__, repr(e))


if __name__ == "__main__":
    try:
        run()
    except Exception as e:  # a crash is a failure, not a traceback to read
        failures.append(f"crashed: {e!r}")
        print(f"FAIL boto3 crashed: {e!r}")
    print(f"boto3 {boto3.__version__}: {len(failures)} failed")
    sys.exit(1 if failures else 0)

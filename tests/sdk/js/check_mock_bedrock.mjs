// The JavaScript v3 SDK against mock Bedrock: every operation, every pre-stream
// error, the stream faults, retries, and model ids with ':' and '/'.
//
// Usage: node check_mock_bedrock.mjs ENDPOINT SCRIPT_JSON [http2|http1]
//   http2 (default) is the SDK's own handler (h2c prior knowledge against http://);
//   http1 uses NodeHttpHandler, as apps that opt out of HTTP/2 do.
// Arms faults through the mock's /__admin/faults. Prints one line per check and
// exits 1 if any failed.

import {
  BedrockRuntimeClient,
  BedrockRuntimeServiceException,
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
} from "@aws-sdk/client-bedrock-runtime";
import { NodeHttpHandler } from "@smithy/node-http-handler";

const [endpoint, scriptJson, transport = "http2"] = process.argv.slice(2);
const { model, prompt, tokens } = JSON.parse(scriptJson);
delete process.env.AWS_BEARER_TOKEN_BEDROCK;

const failures = [];
function check(name, ok, detail) {
  const label = `js/${transport} ${name}`;
  console.log(`${ok ? "ok  " : "FAIL"} ${label}${!ok && detail !== undefined ? ": " + JSON.stringify(detail) : ""}`);
  if (!ok) failures.push(name);
}

function client(maxAttempts = 3) {
  return new BedrockRuntimeClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDMOCK", secretAccessKey: "mock-secret" },
    maxAttempts,
    ...(transport === "http1" ? { requestHandler: new NodeHttpHandler() } : {}),
  });
}

async function arm(kind, fields = {}) {
  const response = await fetch(`${endpoint}/__admin/faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ where: "bedrock", kind, ...fields }),
  });
  if (!response.ok) throw new Error(`arming ${kind}: ${response.status} ${await response.text()}`);
}

const messages = () => [{ role: "user", content: [{ text: prompt }] }];
const anthropicBody = () =>
  JSON.stringify({
    anthropic_version: "bedrock-2023-05-31",
    max_tokens: 100,
    messages: [{ role: "user", content: [{ type: "text", text: prompt }] }],
  });

async function converseStreamDeltas(c, modelId = model) {
  const out = await c.send(new ConverseStreamCommand({ modelId, messages: messages() }));
  const deltas = [];
  const events = [];
  for await (const event of out.stream) {
    const name = Object.keys(event)[0];
    events.push(name);
    if (event.contentBlockDelta) deltas.push(event.contentBlockDelta.delta.text);
  }
  return { deltas, events };
}

async function invokeStreamDeltas(c) {
  const out = await c.send(new InvokeModelWithResponseStreamCommand({ modelId: model, body: anthropicBody() }));
  const deltas = [];
  for await (const event of out.body) {
    const native = JSON.parse(new TextDecoder().decode(event.chunk.bytes));
    if (native.type === "content_block_delta") deltas.push(native.delta.text);
  }
  return deltas;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function run() {
  const c = client();
  const { deltas, events } = await converseStreamDeltas(c);
  check("ConverseStream tokens", same(deltas, tokens), deltas);
  check("ConverseStream ends with metadata", same(events.slice(-2), ["messageStop", "metadata"]), events);
  const invokeDeltas = await invokeStreamDeltas(c);
  check("InvokeModelWithResponseStream tokens", same(invokeDeltas, tokens), invokeDeltas);

  const conv = await c.send(new ConverseCommand({ modelId: model, messages: messages() }));
  check("Converse text", conv.output.message.content[0].text === tokens.join(""), conv.output);
  check("Converse request id", conv.$metadata.requestId?.length === 36, conv.$metadata);
  check("Converse integer latency", Number.isInteger(conv.metrics.latencyMs), conv.metrics);

  const inv = await c.send(new InvokeModelCommand({ modelId: model, body: anthropicBody() }));
  const native = JSON.parse(new TextDecoder().decode(inv.body));
  check("InvokeModel text", native.content[0].text === tokens.join(""), native);

  const arn = `arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.${model}`;
  check("ARN model id", same((await converseStreamDeltas(c, arn)).deltas, tokens));

  const once = client(1);
  for (const [kind, code, status] of [
    ["throttling", "ThrottlingException", 429],
    ["validation", "ValidationException", 400],
    ["access_denied", "AccessDeniedException", 403],
    ["resource_not_found", "ResourceNotFoundException", 404],
    ["model_timeout", "ModelTimeoutException", 408],
    ["model_not_ready", "ModelNotReadyException", 429],
    ["service_unavailable", "ServiceUnavailableException", 503],
    ["internal", "InternalServerException", 500],
  ]) {
    await arm(kind);
    try {
      await once.send(new ConverseStreamCommand({ modelId: model, messages: messages() }));
      check(`${code} raised`, false, "no error");
    } catch (e) {
      const ok =
        e.name === code &&
        e instanceof BedrockRuntimeServiceException &&
        e.$metadata?.httpStatusCode === status &&
        e.message &&
        e.message !== "UnknownError";
      check(`${code} typed`, ok, { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message });
    }
  }

  await arm("throttling", { attempts: 1 });
  await arm("throttling", { attempts: 2 });
  const retried = await c.send(new ConverseCommand({ modelId: model, messages: messages() }));
  check("retried through", retried.$metadata.attempts === 3, retried.$metadata);

  for (const [exception, className] of [
    ["throttlingException", "ThrottlingException"],
    ["modelStreamErrorException", "ModelStreamErrorException"],
    ["internalServerException", "InternalServerException"],
    ["validationException", "ValidationException"],
    ["serviceUnavailableException", "ServiceUnavailableException"],
  ]) {
    await arm("exception", { after_tokens: 2, exception });
    const got = [];
    try {
      const out = await c.send(new ConverseStreamCommand({ modelId: model, messages: messages() }));
      for await (const event of out.stream) {
        if (event.contentBlockDelta) got.push(event.contentBlockDelta.delta.text);
      }
      check(`stream ${exception}`, false, "no error");
    } catch (e) {
      const ok = e.name === className && e instanceof BedrockRuntimeServiceException && same(got, tokens.slice(0, 2));
      check(`stream ${exception}`, ok, { name: e.name, got });
    }
  }

  await arm("exception", { after_tokens: 1, exception: "modelTimeoutException" });
  try {
    await invokeStreamDeltas(c);
    check("invoke stream modelTimeoutException", false, "no error");
  } catch (e) {
    check("invoke stream modelTimeoutException", e.name === "ModelTimeoutException", e.name);
  }

  // Not in ConverseStream's union: the mock sends a member of it instead.
  await arm("exception", { after_tokens: 1, exception: "modelTimeoutException" });
  try {
    await converseStreamDeltas(c);
    check("converse stream out-of-union exception", false, "no error");
  } catch (e) {
    check("converse stream out-of-union exception", e.name === "ModelStreamErrorException" && !!e.message, e.name);
  }

  await arm("corrupt_frame", { after_tokens: 1 });
  try {
    await converseStreamDeltas(c);
    check("corrupt frame", false, "no error");
  } catch (e) {
    check("corrupt frame", /checksum/i.test(e.message), e.message);
  }

  await arm("drop", { after_tokens: 2 });
  try {
    const { deltas: cut } = await converseStreamDeltas(c);
    check("dropped connection", false, { cut });
  } catch (e) {
    check("dropped connection", true);
  }
}

try {
  await run();
} catch (e) {
  failures.push(`crashed: ${e}`);
  console.log(`FAIL js/${transport} crashed: ${e?.stack ?? e}`);
}
console.log(`js/${transport}: ${failures.length} failed`);
process.exit(failures.length ? 1 : 0);

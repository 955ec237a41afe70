// Reads a UI message stream with the AI SDK's own client, as useChat does, and prints
// what it made of it as one JSON object: {message, chunks, errors, status, headers}.
//
//   node read_ui_stream.mjs < body.sse           the SSE bytes on stdin
//   node read_ui_stream.mjs URL < request.json   POST {messages, ...} to a chat route
//   node read_ui_stream.mjs --batch < bodies.json a JSON list of bodies (strings) in,
//                                                 a JSON list of those objects out
//
// Both go through DefaultChatTransport.sendMessages (for bytes, with a fetch that
// answers them), so the parts are parsed and validated by the SDK's own schema, then
// assembled by readUIMessageStream. `chunks` are the parts as the SDK validated them;
// `errors` the messages of the errors the SDK reported (an in-band error part, a part
// the schema refused, an HTTP error status).
import { DefaultChatTransport, readUIMessageStream } from "ai";

async function stdin() {
  const pieces = [];
  for await (const piece of process.stdin) pieces.push(piece);
  return Buffer.concat(pieces);
}

/** What the SDK makes of `input`: SSE bytes, or with `url` a request's JSON. */
async function read(input, url) {
  const request = url ? JSON.parse(input.toString("utf-8")) : { messages: [] };
  const { messages = [], ...body } = request;
  const seen = { status: null, headers: {} };

  async function answer(target, init) {
    const response = url
      ? await fetch(target, init)
      : new Response(input, { headers: { "content-type": "text/event-stream" } });
    seen.status = response.status;
    response.headers.forEach((value, name) => {
      seen.headers[name] = value;
    });
    return response;
  }

  const transport = new DefaultChatTransport({
    api: url ?? "http://127.0.0.1/api/chat",
    fetch: answer,
    body,
  });
  const errors = [];
  const chunks = [];
  let message = null;
  try {
    const stream = await transport.sendMessages({
      chatId: "chat",
      messages,
      trigger: "submit-message",
      messageId: undefined,
      abortSignal: undefined,
    });
    const [forMessage, forChunks] = stream.tee();
    const collecting = (async () => {
      try {
        for await (const chunk of forChunks) chunks.push(chunk);
      } catch {
        // the same error reaches readUIMessageStream's onError
      }
    })();
    const snapshots = readUIMessageStream({
      stream: forMessage,
      onError: (error) => errors.push(String(error?.message ?? error)),
    });
    for await (const snapshot of snapshots) message = snapshot;
    await collecting;
  } catch (error) {
    errors.push(String(error?.message ?? error));
  }
  return { message, chunks, errors, ...seen };
}

const input = await stdin();
let result;
if (process.argv[2] === "--batch") {
  result = [];
  for (const text of JSON.parse(input.toString("utf-8"))) {
    result.push(await read(Buffer.from(text, "utf-8")));
  }
} else {
  result = await read(input, process.argv[2]);
}
process.stdout.write(JSON.stringify(result));

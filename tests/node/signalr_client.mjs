// A real @microsoft/signalr client for tests and benches, driven over stdin/stdout.
//
// node tests/node/signalr_client.mjs --url <negotiate base> --targets a,b [--reconnect-ms N]
// stdout: one JSON object per line, {"event": "connected" | "message" | "reconnecting" |
//   "reconnected" | "closed" | "invoked" | "invoke-error" | "error", ...}
// stdin: one JSON command per line, {"cmd": "invoke", "target": T, "args": [...]} or {"cmd": "stop"};
//   closing stdin stops the client too.
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import * as signalR from "@microsoft/signalr";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    targets: { type: "string", default: "" },
    "reconnect-ms": { type: "string" },
  },
});
if (!values.url) {
  process.stderr.write("--url is required\n");
  process.exit(2);
}

const emit = (event) => process.stdout.write(JSON.stringify(event) + "\n");

// stdout carries the JSON lines, so the library's own logging goes to stderr.
const logger = {
  log(level, message) {
    if (level >= signalR.LogLevel.Warning) process.stderr.write(`[signalr ${level}] ${message}\n`);
  },
};

let builder = new signalR.HubConnectionBuilder().withUrl(values.url).configureLogging(logger);
if (values["reconnect-ms"]) {
  // A short fixed delay: the default policy (0, 2, 10, 30 s) makes reconnect tests slow and flaky.
  const delay = Number(values["reconnect-ms"]);
  builder = builder.withAutomaticReconnect({
    nextRetryDelayInMilliseconds: (context) => (context.elapsedMilliseconds < 60000 ? delay : null),
  });
}
const connection = builder.build();

for (const target of values.targets.split(",").filter(Boolean)) {
  // A block body: a handler that returns a value makes the client warn about an unexpected result.
  connection.on(target, (...args) => {
    emit({ event: "message", target, arguments: args });
  });
}
connection.onreconnecting((error) => emit({ event: "reconnecting", error: error ? String(error) : null }));
connection.onreconnected((connectionId) => emit({ event: "reconnected", connectionId }));
connection.onclose((error) => {
  emit({ event: "closed", error: error ? String(error) : null });
  process.exit(0);
});

async function handle(line) {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  if (command.cmd === "stop") {
    await connection.stop();
  } else if (command.cmd === "invoke") {
    try {
      const result = await connection.invoke(command.target, ...(command.args || []));
      emit({ event: "invoked", target: command.target, result });
    } catch (error) {
      emit({ event: "invoke-error", target: command.target, message: String(error && error.message) });
    }
  }
}

try {
  await connection.start();
} catch (error) {
  emit({ event: "error", message: String(error && error.message) });
  process.exit(1);
}
emit({ event: "connected", connectionId: connection.connectionId });

const input = createInterface({ input: process.stdin });
input.on("line", (line) => {
  handle(line).catch((error) => emit({ event: "error", message: String(error) }));
});
input.on("close", () => connection.stop());

// A real MCP client, the official TypeScript SDK's, as an assistant's host
// would run it: it starts a server over stdio, lists its tools, makes the
// calls it is given, and prints what came back as JSON lines.
//
//   node client.mjs '{"command":"npx","args":["--no-install","mcp-server-memory"],
//                     "calls":[{"tool":"read_graph","arguments":{}}],"hold":true}'
//
// "resources" lists URIs to read after the calls. With "hold", it prints {"kind":"ready"} after the calls and keeps the
// session open until its stdin closes.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const spec = JSON.parse(process.argv[2]);
const transport = new StdioClientTransport({
  command: spec.command,
  args: spec.args ?? [],
  env: { ...process.env, ...(spec.env ?? {}) },
  cwd: spec.cwd,
  stderr: "inherit",
});
const client = new Client({ name: "mcpsec-e2e-client", version: "1.0.0" });
await client.connect(transport);
const out = (v) => console.log(JSON.stringify(v));
const { tools } = await client.listTools();
out({ kind: "tools", names: tools.map((t) => t.name), pid: transport.pid });
for (const c of spec.calls ?? []) {
  // "repeat": N makes the call N times, printing the last result only
  for (let i = 0; i < (c.repeat ?? 1); i++) {
    try {
      const result = await client.callTool({ name: c.tool, arguments: c.arguments ?? {} });
      if (i === (c.repeat ?? 1) - 1) out({ kind: "result", tool: c.tool, result });
    } catch (e) {
      out({ kind: "error", tool: c.tool, error: String(e) });
    }
  }
}
// "resources": URIs to read after the calls
for (const uri of spec.resources ?? []) {
  try {
    const result = await client.readResource({ uri });
    out({ kind: "resource", uri, result });
  } catch (e) {
    out({ kind: "error", uri, error: String(e) });
  }
}
if (spec.hold) {
  out({ kind: "ready" });
  await new Promise((resolve) => {
    process.stdin.on("data", resolve);
    process.stdin.on("end", resolve);
  });
}
await client.close();

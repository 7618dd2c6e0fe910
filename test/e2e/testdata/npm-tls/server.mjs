// TLS-terminating MCP server for the sensor's end-to-end tests.
//
// Serves the MCP Streamable HTTP transport (stateful: one McpServer and one
// StreamableHTTPServerTransport per session, keyed by the mcp-session-id
// header) at /mcp over node's https module, so the traffic passes through
// node's statically linked OpenSSL.
//
// Env:
//   MCPSEC_TLS_CERT     path to the PEM certificate
//   MCPSEC_TLS_KEY      path to the PEM private key
//   MCPSEC_LISTEN_PORT  port on 127.0.0.1 (0 or unset = pick a free one)
//
// Prints exactly one line, "LISTENING <port>", once it accepts connections.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

function mustEnv(name) {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`server.mjs: ${name} is not set\n`);
    process.exit(2);
  }
  return v;
}

const cert = fs.readFileSync(mustEnv('MCPSEC_TLS_CERT'));
const key = fs.readFileSync(mustEnv('MCPSEC_TLS_KEY'));
const port = Number.parseInt(process.env.MCPSEC_LISTEN_PORT || '0', 10);

function newMcpServer() {
  const server = new McpServer({ name: 'mcpsec-e2e-tls', version: '0.0.1' });
  server.registerTool(
    'echo',
    { description: 'Returns its text argument.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  server.registerTool(
    'read_file',
    { description: 'Returns the content of a file.', inputSchema: { path: z.string() } },
    async ({ path }) => ({ content: [{ type: 'text', text: fs.readFileSync(path, 'utf8') }] }),
  );
  server.registerTool(
    'sleep',
    { description: 'Waits ms milliseconds.', inputSchema: { ms: z.number() } },
    async ({ ms }) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return { content: [{ type: 'text', text: 'slept' }] };
    },
  );
  return server;
}

// sessionId -> { transport, server }
const sessions = new Map();

function sendJsonRpcError(res, status, message) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

async function readJsonBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const raw = Buffer.concat(chunks).toString('utf8');
  return raw === '' ? undefined : JSON.parse(raw);
}

async function handle(req, res) {
  const url = new URL(req.url, 'https://127.0.0.1');
  if (url.pathname !== '/mcp') {
    res.writeHead(404).end();
    return;
  }
  const sid = req.headers['mcp-session-id'];
  const existing = typeof sid === 'string' ? sessions.get(sid) : undefined;

  if (req.method === 'POST') {
    let body;
    try {
      body = await readJsonBody(req);
    } catch {
      sendJsonRpcError(res, 400, 'Parse error');
      return;
    }
    if (existing) {
      await existing.transport.handleRequest(req, res, body);
      return;
    }
    if (sid === undefined && isInitializeRequest(body)) {
      const server = newMcpServer();
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, { transport, server });
        },
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await server.connect(transport);
      await transport.handleRequest(req, res, body);
      return;
    }
    sendJsonRpcError(res, 400, 'Bad Request: No valid session ID provided');
    return;
  }

  if (req.method === 'GET' || req.method === 'DELETE') {
    if (!existing) {
      res.writeHead(400).end('Invalid or missing session ID');
      return;
    }
    await existing.transport.handleRequest(req, res);
    return;
  }

  res.writeHead(405, { allow: 'GET, POST, DELETE' }).end();
}

const httpsServer = https.createServer({ cert, key }, (req, res) => {
  handle(req, res).catch((err) => {
    process.stderr.write(`server.mjs: ${err && err.stack ? err.stack : err}\n`);
    if (!res.headersSent) sendJsonRpcError(res, 500, 'Internal server error');
    else res.end();
  });
});

httpsServer.listen(port, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${httpsServer.address().port}\n`);
});

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  for (const { transport, server } of sessions.values()) {
    try {
      await server.close();
    } catch {}
    try {
      await transport.close();
    } catch {}
  }
  sessions.clear();
  httpsServer.closeAllConnections();
  httpsServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

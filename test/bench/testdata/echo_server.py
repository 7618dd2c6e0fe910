#!/usr/bin/env python3
"""A minimal MCP server over stdio, in Python's standard library only (PyPI
is not reachable where the benchmarks run): newline-delimited JSON-RPC in
and out, as the official SDKs do it, with one tool, echo. The Python stdio
server of the round-trip benchmark."""
import json
import sys

TOOLS = [{
    "name": "echo",
    "description": "Echoes back the input",
    "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
}]


def answer(req):
    method = req.get("method")
    if method == "initialize":
        return {"protocolVersion": req["params"].get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}}, "serverInfo": {"name": "py-echo", "version": "1.0.0"}}
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "tools/call":
        msg = req["params"].get("arguments", {}).get("message", "")
        return {"content": [{"type": "text", "text": "Echo: " + msg}]}
    if method == "ping":
        return {}
    return None


def main():
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        if "id" not in req:
            continue  # a notification
        result = answer(req)
        if result is None:
            resp = {"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32601, "message": "method not found"}}
        else:
            resp = {"jsonrpc": "2.0", "id": req["id"], "result": result}
        out.write(json.dumps(resp, separators=(",", ":")) + "\n")
        out.flush()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""sqlnotes: a notes MCP server over stdio that is open to SQL injection.

A test server for the sensor's end-to-end tests, written as the small
SQLite MCP servers people publish are: Python's standard library only
(json, sqlite3), JSON-RPC read and written a line at a time on stdio
(initialize, notifications/initialized, ping, tools/list, tools/call), and
a connection to the database opened for each query, as the reference
SQLite server did.

Tools: add_note(title, body) and search_notes(query). By default the SQL is
built with f-strings, so a quote in an argument ends the literal:
search_notes("x' UNION SELECT name, sql FROM sqlite_master --") returns the
schema, and add_note(title="a'); DROP TABLE notes; --") drops the table
(writes run through executescript, so stacked statements run too). With
--safe the same tools use parameters, and any text is only text.

Usage: server.py [--safe] DIR   (the database is DIR/notes.db)
"""

import json
import os
import sqlite3
import sys
from contextlib import closing

TOOLS = [
    {
        "name": "add_note",
        "description": "Add a note",
        "inputSchema": {
            "type": "object",
            "properties": {
                "title": {"type": "string", "description": "the note's title"},
                "body": {"type": "string", "description": "the note's text"},
            },
            "required": ["title", "body"],
        },
    },
    {
        "name": "search_notes",
        "description": "Search notes by words in their title or text",
        "inputSchema": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "words to look for"}},
            "required": ["query"],
        },
    },
]


class Notes:
    def __init__(self, path, safe):
        self.path = path
        self.safe = safe
        with closing(sqlite3.connect(self.path)) as conn, conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, title TEXT NOT NULL)"
            )

    def add(self, title, body):
        with closing(sqlite3.connect(self.path)) as conn, conn:
            if self.safe:
                conn.execute("INSERT INTO notes (body, title) VALUES (?, ?)", (body, title))
            else:
                conn.executescript(f"INSERT INTO notes (body, title) VALUES ('{body}', '{title}');")
        return f"added {title!r}"

    def search(self, query):
        with closing(sqlite3.connect(self.path)) as conn:
            if self.safe:
                like = f"%{query}%"
                rows = conn.execute(
                    "SELECT title, body FROM notes WHERE title LIKE ? OR body LIKE ? ORDER BY id", (like, like)
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT title, body FROM notes WHERE title LIKE '%{query}%' OR body LIKE '%{query}%' ORDER BY id"
                ).fetchall()
        if not rows:
            return "no notes match"
        return "\n".join(f"{t}: {b}" for t, b in rows)


def result(msg_id, value):
    return {"jsonrpc": "2.0", "id": msg_id, "result": value}


def error(msg_id, code, message):
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


def handle(notes, msg):
    method, msg_id = msg.get("method"), msg.get("id")
    if msg_id is None:
        return None  # a notification (notifications/initialized, cancelled, ...)
    if method == "initialize":
        version = msg.get("params", {}).get("protocolVersion", "2025-06-18")
        return result(
            msg_id,
            {
                "protocolVersion": version,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "sqlnotes", "version": "1.0.0"},
            },
        )
    if method == "ping":
        return result(msg_id, {})
    if method == "tools/list":
        return result(msg_id, {"tools": TOOLS})
    if method == "tools/call":
        params = msg.get("params", {})
        name, args = params.get("name"), params.get("arguments") or {}
        try:
            if name == "add_note":
                out = notes.add(str(args["title"]), str(args["body"]))
            elif name == "search_notes":
                out = notes.search(str(args["query"]))
            else:
                return error(msg_id, -32602, f"unknown tool {name}")
        except (sqlite3.Error, KeyError) as e:
            return result(msg_id, {"content": [{"type": "text", "text": f"error: {e}"}], "isError": True})
        return result(msg_id, {"content": [{"type": "text", "text": out}]})
    return error(msg_id, -32601, f"method not found: {method}")


def main(argv):
    args = [a for a in argv[1:] if a != "--safe"]
    if len(args) != 1:
        print("usage: server.py [--safe] DIR", file=sys.stderr)
        return 2
    notes = Notes(os.path.join(args[0], "notes.db"), "--safe" in argv)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except json.JSONDecodeError as e:
            reply = error(None, -32700, f"parse error: {e}")
        else:
            reply = handle(notes, msg)
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

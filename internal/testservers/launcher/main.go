// Command launcher is a malicious-by-design "dev helper" for the sensor's
// end-to-end tests: an HTTP server, not an MCP server, that runs whatever
// a request names, as the MCP Inspector's proxy did before its fix
// (CVE-2025-49596: its /sse endpoint started any command line it was
// given, reachable from any web page through the browser). Any process
// that can reach its port runs programs as its user:
//
//	GET  /run?command=sh&args=-c&args=id   runs the command with the args
//	POST /exec {"command": "uname -a"}     runs the command line with sh -c
//	GET  /debug                            runs a fixed shell pipeline (ps | head)
//	GET  /health                           says ok
//
// With -benign it is the honest twin: it runs `sh -c 'uname -a'` once at
// start-up, before it listens, to log the host it runs on, and serves
// only /health and /time (which runs /bin/date with fixed arguments; no
// request data reaches any command line).
//
// It prints "LISTENING host:port" on stdout once it listens.
//
// Usage: launcher [-benign] [-addr 127.0.0.1:0]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	benign := flag.Bool("benign", false, "serve only /health and /time")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	if *benign {
		out, err := exec.Command("sh", "-c", "uname -a").CombinedOutput()
		log.Printf("launcher: host %s (%v)", out, err)
		mux.HandleFunc("GET /time", func(w http.ResponseWriter, r *http.Request) {
			out, err := exec.CommandContext(r.Context(), "/bin/date", "-u", "+%Y-%m-%dT%H:%M:%SZ").Output()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Write(out)
		})
	} else {
		mux.HandleFunc("GET /run", func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			run(w, r, exec.CommandContext(r.Context(), q.Get("command"), q["args"]...))
		})
		mux.HandleFunc("GET /debug", func(w http.ResponseWriter, r *http.Request) {
			run(w, r, exec.CommandContext(r.Context(), "/bin/sh", "-c", "ps -e | head -3"))
		})
		mux.HandleFunc("POST /exec", func(w http.ResponseWriter, r *http.Request) {
			var req struct {
				Command string `json:"command"`
			}
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			run(w, r, exec.CommandContext(r.Context(), "/bin/sh", "-c", req.Command))
		})
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("LISTENING %s\n", ln.Addr())
	os.Stdout.Sync()
	log.Fatal(http.Serve(ln, mux))
}

// run runs cmd and answers with its combined output.
func run(w http.ResponseWriter, _ *http.Request, cmd *exec.Cmd) {
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
	}
	w.Write(out)
}

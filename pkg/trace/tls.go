package trace

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/loader"
)

// tlsWatcher finds the OpenSSL a traced process really maps (its
// /proc/PID/maps: libssl, or a binary that embeds OpenSSL such as node)
// and puts the SSL_* uprobes on each such file once. A process is scanned
// when it execs (the binary itself), shortly after (the libraries ld.so
// maps), and every few seconds while it lives (libraries opened later,
// such as Python's _ssl).
type tlsWatcher struct {
	objs *loader.Objects
	log  hclog.Logger
	in   chan uint32
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu       sync.Mutex
	files    map[string]bool // dev:inode -> has OpenSSL (probed if so)
	pids     map[uint32]time.Time
	attached []string
}

func newTLSWatcher(objs *loader.Objects, log hclog.Logger) *tlsWatcher {
	w := &tlsWatcher{
		objs: objs, log: log, in: make(chan uint32, 1024), stop: make(chan struct{}), done: make(chan struct{}),
		files: map[string]bool{}, pids: map[uint32]time.Time{},
	}
	go w.run()
	return w
}

// event looks at a decoded event for processes to scan. It must not block:
// it runs on the reader's path.
func (w *tlsWatcher) event(e decode.Event) {
	ef, ok := e.(*decode.Effect)
	if !ok {
		return
	}
	switch ef.Type {
	case "exec", "discover":
		w.watch(ef.PID)
	}
}

// watch schedules pid for scanning.
func (w *tlsWatcher) watch(pid uint32) {
	select {
	case w.in <- pid:
	default: // the periodic rescan catches it
	}
}

const tlsRescan = 2 * time.Second

func (w *tlsWatcher) run() {
	defer close(w.done)
	tick := time.NewTicker(tlsRescan)
	defer tick.Stop()
	soon := time.NewTimer(time.Hour)
	defer soon.Stop()
	var again []uint32
	for {
		select {
		case <-w.stop:
			return
		case pid := <-w.in:
			w.mu.Lock()
			w.pids[pid] = time.Now()
			w.mu.Unlock()
			w.scan(pid)
			// ld.so maps the libraries right after exec
			again = append(again, pid)
			soon.Reset(100 * time.Millisecond)
		case <-soon.C:
			for _, pid := range again {
				w.scan(pid)
			}
			again = again[:0]
		case <-tick.C:
			w.mu.Lock()
			pids := make([]uint32, 0, len(w.pids))
			for pid := range w.pids {
				pids = append(pids, pid)
			}
			w.mu.Unlock()
			for _, pid := range pids {
				if !w.scan(pid) {
					w.mu.Lock()
					delete(w.pids, pid)
					w.mu.Unlock()
				}
			}
		}
	}
}

func (w *tlsWatcher) close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// Attached returns the files the uprobes are on.
func (w *tlsWatcher) Attached() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.attached...)
}

// scan probes the OpenSSL files pid maps; false if pid is gone.
func (w *tlsWatcher) scan(pid uint32) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// address perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || !strings.Contains(fields[1], "x") || fields[4] == "0" || !strings.HasPrefix(fields[5], "/") {
			continue
		}
		key := fields[3] + ":" + fields[4]
		w.mu.Lock()
		_, seen := w.files[key]
		w.mu.Unlock()
		if seen {
			continue
		}
		// the file as the process sees it (its mount namespace)
		path := fmt.Sprintf("/proc/%d/root%s", pid, strings.Join(fields[5:], " "))
		has, err := loader.HasOpenSSL(path)
		if err != nil {
			w.log.Debug("not an ELF file", "path", path, "error", err)
		}
		w.mu.Lock()
		w.files[key] = has
		w.mu.Unlock()
		if !has {
			continue
		}
		probed, err := w.objs.AttachTLS(path)
		if err != nil {
			w.log.Warn("TLS plaintext of this library will not be seen", "file", fields[5], "error", err)
			continue
		}
		w.mu.Lock()
		w.attached = append(w.attached, fields[5])
		w.mu.Unlock()
		w.log.Info("TLS: uprobes on OpenSSL", "file", fields[5], "functions", probed, "pid", pid)
	}
	return true
}

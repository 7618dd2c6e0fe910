package pipeline

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

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
	inodes   map[uint64]bool // inodes of the files looked at
	pids     map[uint32]time.Time
	attached []string
}

func newTLSWatcher(objs *loader.Objects, log hclog.Logger) *tlsWatcher {
	w := &tlsWatcher{
		objs: objs, log: log, in: make(chan uint32, 1024), stop: make(chan struct{}), done: make(chan struct{}),
		files: map[string]bool{}, inodes: map[uint64]bool{}, pids: map[uint32]time.Time{},
	}
	w.warm()
	go w.run()
	return w
}

// warm probes the libssl the dynamic linker resolves by default, before
// any traced process maps it: a server that loads it and serves at once
// would otherwise speak before its maps are scanned. Processes' maps stay
// the authority; this only saves the race for the common library.
func (w *tlsWatcher) warm() {
	out, err := exec.Command("ldconfig", "-p").Output()
	if err != nil {
		w.log.Debug("no ldconfig cache to warm the TLS probes from", "error", err)
		return
	}
	for _, ln := range strings.Split(string(out), "\n") {
		name, target, ok := strings.Cut(strings.TrimSpace(ln), " => ")
		if !ok || !strings.HasPrefix(name, "libssl.so.") || !strings.Contains(name, "x86-64") {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(target, &st) != nil {
			continue
		}
		key := fmt.Sprintf("%02x:%02x %d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
		w.probe(key, st.Ino, target, target, 0)
	}
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
	case "mmap_exec":
		// a library was loaded: look at it now, not at the next rescan
		w.mu.Lock()
		seen := w.inodes[ef.Inode]
		w.mu.Unlock()
		if !seen {
			w.watch(ef.PID)
		}
	}
}

// watch schedules pid for scanning.
func (w *tlsWatcher) watch(pid uint32) {
	select {
	case w.in <- pid:
	default: // the periodic rescan catches it
	}
}

// tlsRescan is the fallback look at every watched process's maps: a
// library mapped later is probed at its mmap_exec effect, so this only
// catches what that missed. Each look reads /proc/PID/maps (the kernel
// writes out every mapping): at 2 s it was an eighth of the daemon's CPU
// with 100 idle servers.
const tlsRescan = 30 * time.Second

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
		// address perms offset dev inode path: only executable mappings
		// of files (most lines are neither) are split
		ln := sc.Bytes()
		if sp := bytes.IndexByte(ln, ' '); sp < 0 || len(ln) < sp+4 || ln[sp+3] != 'x' || bytes.IndexByte(ln, '/') < 0 {
			continue
		}
		fields := strings.Fields(string(ln))
		if len(fields) < 6 || !strings.Contains(fields[1], "x") || fields[4] == "0" || !strings.HasPrefix(fields[5], "/") {
			continue
		}
		ino, _ := strconv.ParseUint(fields[4], 10, 64)
		name := strings.Join(fields[5:], " ")
		// the file as the process sees it (its mount namespace)
		w.probe(fields[3]+" "+fields[4], ino, fmt.Sprintf("/proc/%d/root%s", pid, name), name, pid)
	}
	return true
}

// probe puts the uprobes on a file once, if it carries OpenSSL. key is
// "major:minor inode" (hex device numbers, as /proc/PID/maps writes them).
func (w *tlsWatcher) probe(key string, ino uint64, path, name string, pid uint32) {
	w.mu.Lock()
	_, seen := w.files[key]
	w.mu.Unlock()
	if seen {
		return
	}
	offsets, err := loader.OpenSSL(path)
	if err != nil {
		w.log.Debug("not an ELF file", "path", path, "error", err)
	}
	has := offsets != nil
	w.mu.Lock()
	w.files[key] = has
	w.inodes[ino] = true
	w.mu.Unlock()
	if !has {
		return
	}
	probed, err := w.objs.AttachTLS(path, offsets)
	if err != nil {
		w.log.Warn("TLS plaintext of this library will not be seen", "file", name, "error", err)
		return
	}
	w.mu.Lock()
	w.attached = append(w.attached, name)
	w.mu.Unlock()
	w.log.Info("TLS: uprobes on OpenSSL", "file", name, "functions", probed, "pid", pid)
}

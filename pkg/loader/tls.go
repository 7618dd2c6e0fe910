package loader

import (
	"debug/elf"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// tlsSymbols are the OpenSSL functions whose plaintext the uprobes capture.
// SSL_read and SSL_write must be there; the rest are taken when present.
var tlsSymbols = []struct {
	name     string
	required bool
}{
	{"SSL_read", true}, {"SSL_write", true}, {"SSL_read_ex", false}, {"SSL_write_ex", false},
	{"SSL_free", false},
}

// HasOpenSSL reports whether the ELF file at path exports OpenSSL's SSL_read
// and SSL_write: libssl, or a binary that embeds OpenSSL (node).
func HasOpenSSL(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		if errors.Is(err, elf.ErrNoSymbols) {
			return false, nil
		}
		return false, err
	}
	found := 0
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Section != elf.SHN_UNDEF && (s.Name == "SSL_read" || s.Name == "SSL_write") {
			found++
		}
	}
	return found == 2, nil
}

// AttachTLS puts the SSL_* uprobes on the executable or library at path.
// The probes fire in every process that maps the file; the programs keep
// only tracked processes. It returns the functions probed.
func (o *Objects) AttachTLS(path string) ([]string, error) {
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s for uprobes: %w", path, err)
	}
	p := &o.objs.sensorPrograms
	entry := map[string]*ebpf.Program{
		"SSL_read": p.TlsRead, "SSL_write": p.TlsWrite, "SSL_read_ex": p.TlsReadEx,
		"SSL_write_ex": p.TlsWriteEx, "SSL_free": p.TlsFree,
	}
	var links []link.Link
	var probed []string
	for _, s := range tlsSymbols {
		l, err := ex.Uprobe(s.name, entry[s.name], nil)
		if err != nil {
			if !s.required {
				continue
			}
			closeLinks(links)
			return nil, fmt.Errorf("uprobe on %s in %s: %w", s.name, path, err)
		}
		links = append(links, l)
		if s.name != "SSL_free" {
			r, err := ex.Uretprobe(s.name, p.TlsRet, nil)
			if err != nil {
				closeLinks(links)
				return nil, fmt.Errorf("uretprobe on %s in %s: %w", s.name, path, err)
			}
			links = append(links, r)
		}
		probed = append(probed, s.name)
	}
	o.mu.Lock()
	o.tlsLinks = append(o.tlsLinks, links...)
	o.mu.Unlock()
	return probed, nil
}

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

// OpenSSL returns the file offsets of the OpenSSL functions an ELF file
// exports (libssl, or a binary that embeds OpenSSL such as node), or nil if
// it does not export SSL_read and SSL_write. Only the dynamic symbols are
// read: a large binary's full symbol table would delay the probes.
func OpenSSL(path string) (map[string]uint64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		if errors.Is(err, elf.ErrNoSymbols) {
			return nil, nil
		}
		return nil, err
	}
	want := map[string]bool{}
	for _, s := range tlsSymbols {
		want[s.name] = true
	}
	out := map[string]uint64{}
	for _, s := range syms {
		if !want[s.Name] || elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Section == elf.SHN_UNDEF {
			continue
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && p.Vaddr <= s.Value && s.Value < p.Vaddr+p.Memsz {
				out[s.Name] = s.Value - p.Vaddr + p.Off
				break
			}
		}
	}
	if out["SSL_read"] == 0 || out["SSL_write"] == 0 {
		return nil, nil
	}
	return out, nil
}

// AttachTLS puts the SSL_* uprobes on the executable or library at path, at
// the offsets OpenSSL found. The probes fire in every process that maps the
// file; the programs keep only tracked processes. It returns the functions
// probed.
func (o *Objects) AttachTLS(path string, offsets map[string]uint64) ([]string, error) {
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
		off, ok := offsets[s.name]
		if !ok {
			continue
		}
		opts := &link.UprobeOptions{Address: off}
		l, err := ex.Uprobe(s.name, entry[s.name], opts)
		if err != nil {
			if !s.required {
				continue
			}
			closeLinks(links)
			return nil, fmt.Errorf("uprobe on %s in %s: %w", s.name, path, err)
		}
		links = append(links, l)
		if s.name != "SSL_free" {
			r, err := ex.Uretprobe(s.name, p.TlsRet, opts)
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

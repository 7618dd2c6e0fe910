package loader

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Feature is one capability of this kernel and whether the sensor needs it.
type Feature struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Need says what uses it: "required", or the part that degrades without it.
	Need   string `json:"need"`
	Detail string `json:"detail,omitempty"`
}

// Probe checks what this kernel offers. It loads small test programs, so it
// needs root; it attaches nothing that stays.
func Probe() []Feature {
	var out []Feature
	_ = removeMemlock()
	add := func(name, need string, err error, okDetail string) {
		f := Feature{Name: name, OK: err == nil, Need: need, Detail: okDetail}
		if err != nil {
			f.Detail = err.Error()
		}
		out = append(out, f)
	}
	_, err := os.Stat("/sys/kernel/btf/vmlinux")
	add("kernel BTF (/sys/kernel/btf/vmlinux)", "required: CO-RE", err, "")
	add("BTF tracepoints (tp_btf)", "required: syscall and sched hooks with direct reads", tpBTF(), "attached by name, no tracefs needed")
	add("bpf_rdonly_cast kfunc (kernel 6.2+)", "required: fast reads of the file behind an fd", kfunc("bpf_rdonly_cast"), "")
	add("ring buffer maps", "required: events and payloads", features.HaveMapType(ebpf.RingBuf), "")
	add("bpf_loop helper", "required: payload chunking, path walks", features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnLoop), "")
	add("bpf_send_signal helper", "in-kernel stop (containment)", features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnSendSignal), "")
	add("cgroup sock_addr programs", "in-kernel egress deny (containment)", features.HaveProgramType(ebpf.CGroupSockAddr), "")
	add("task local storage", "not used yet", features.HaveMapType(ebpf.TaskStorage), "")
	add("kprobes", "not used: the sensor needs none", kprobes(), "")
	add("fentry/fexit", "not used: the sensor needs none", fentry(), "")
	add("BPF-LSM (bpf_d_path)", "not used: paths are rebuilt by a dentry walk", lsm(), "")
	add("uprobes", "TLS plaintext capture", pmu("uprobe"), "")
	add("cgroup v2 mounted", "`trace -- CMD` and containment (mounted on demand)", cgroup2(), "")
	add("tracefs mounted", "not used: BTF tracepoints need no tracefs", mounted("/sys/kernel/tracing", 0x74726163), "")
	add("bpffs mounted", "pinned maps (containment across restarts; mounted on demand)", mounted("/sys/fs/bpf", 0xcafe4a11), "")
	return out
}

// Missing returns the required features that are absent.
func Missing(fs []Feature) []Feature {
	var out []Feature
	for _, f := range fs {
		if !f.OK && strings.HasPrefix(f.Need, "required") {
			out = append(out, f)
		}
	}
	return out
}

func kfunc(name string) error {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return fmt.Errorf("reading kernel BTF: %w", err)
	}
	if _, err := spec.AnyTypeByName(name); err != nil {
		return fmt.Errorf("%s not in the kernel's BTF", name)
	}
	return nil
}

func pmu(name string) error {
	if _, err := os.Stat("/sys/bus/event_source/devices/" + name); err != nil {
		return fmt.Errorf("no %s PMU in /sys/bus/event_source/devices (kernel built without it)", name)
	}
	return nil
}

func kprobes() error {
	if err := pmu("kprobe"); err != nil {
		return errors.New("kernel built without CONFIG_KPROBES")
	}
	return nil
}

// tryAttach loads an empty program of the given kind, attaches it and
// detaches it at once: whether a hook really works here, not only whether
// its program type exists. why explains a failed attach.
func tryAttach(typ ebpf.ProgramType, at ebpf.AttachType, to, why string) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: typ, AttachType: at, AttachTo: to, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		return refused(err)
	}
	defer prog.Close()
	var l link.Link
	if typ == ebpf.LSM {
		l, err = link.AttachLSM(link.LSMOptions{Program: prog})
	} else {
		l, err = link.AttachTracing(link.TracingOptions{Program: prog})
	}
	if err != nil {
		return fmt.Errorf("cannot attach (%s): %w", why, err)
	}
	return l.Close()
}

// fentry: the program type exists on every modern kernel, but attaching
// needs the BPF trampoline.
func fentry() error {
	return tryAttach(ebpf.Tracing, ebpf.AttachTraceFEntry, "do_exit", "no BPF trampoline")
}

// tpBTF: the hook the sensor uses, which needs no trampoline.
func tpBTF() error {
	return tryAttach(ebpf.Tracing, ebpf.AttachTraceRawTp, "sys_exit", "BTF tracepoints unsupported")
}

func lsm() error {
	return tryAttach(ebpf.LSM, ebpf.AttachLSMMac, "file_open", "bpf not in the active LSM list, or no trampoline")
}

func cgroup2() error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	if strings.Contains(string(b), " - cgroup2 ") {
		return nil
	}
	return errors.New("not mounted")
}

func mounted(path string, magic int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if st.Type != magic {
		return fmt.Errorf("%s is not mounted", path)
	}
	return nil
}

// refused explains a failed test load without cilium/ebpf's memlock hint,
// which does not apply: the limit was lifted before probing.
func refused(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return fmt.Errorf("the kernel refuses to load it: %w", errno)
	}
	return fmt.Errorf("cannot load: %w", err)
}

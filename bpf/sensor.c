//go:build ignore
// SPDX-License-Identifier: GPL-2.0
/*
 * The sensor's eBPF programs, one compilation unit built from one header per
 * concern. Syscalls are seen at sys_exit only: the saved registers still hold
 * the arguments there, the result is known, and untracked processes pay one
 * hook and one map lookup instead of two (see DESIGN.md, "The floor").
 */
#include "common.h"
#include "contain.h"
#include "path.h"
#include "process.h"
#include "files.h"
#include "net.h"
#include "escape.h"
#include "io.h"
#include "tls.h"

char LICENSE[] SEC("license") = "GPL";

#define CANDIDATE_SLOT (NR_MAX - 1)
#define TS_COMPAT 0x0002

SEC("tp_btf/sys_exit")
int sys_exit(__u64 *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	/* the one lookup an untracked process pays */
	struct proc_info *p = current_proc(tgid);
	struct pt_regs *regs;
	long nr;

	if (!p)
		return 0;
	regs = (struct pt_regs *)ctx[0];
	nr = regs->orig_ax;
	if (p->flags & P_CANDIDATE) {
		if (nr == 0)
			bpf_tail_call(ctx, &sys_exit_progs, CANDIDATE_SLOT);
		return 0;
	}
	/* a 32-bit syscall (int 0x80, or a compat process) numbers and passes
	 * its arguments differently: not decoded, but counted */
	if (bpf_get_current_task_btf()->thread_info.status & TS_COMPAT) {
		count(C_COMPAT_SKIPPED, 1);
		return 0;
	}
	if ((unsigned long)nr >= CANDIDATE_SLOT)
		return 0;
	bpf_tail_call(ctx, &sys_exit_progs, nr);
	return 0;
}

/* execve/execveat at exit: success is reported by sched_process_exec. */
SEC("tp_btf/sys_exit")
int handle_exec(__u64 *ctx)
{
	struct sysargs s;
	struct proc_info *p = tracked_syscall(ctx, &s);

	if (!p)
		return 0;
	if (s.ret >= 0)
		return 0;
	return exec_failed(&s, p);
}

/* Referenced so their BTF reaches bpf2go, which generates the Go types. */
const struct rec_hdr *unused_rec_hdr __attribute__((unused));
const struct effect_fixed *unused_effect_fixed __attribute__((unused));
const struct chunk_hdr *unused_chunk_hdr __attribute__((unused));
const enum effect_kind *unused_effect_kind __attribute__((unused));
const enum counter *unused_counter __attribute__((unused));
const enum rec_flags *unused_rec_flags __attribute__((unused));
const enum chunk_flags *unused_chunk_flags __attribute__((unused));
const enum ftype *unused_ftype __attribute__((unused));
const enum rec_class *unused_rec_class __attribute__((unused));
const enum proc_flags *unused_proc_flags __attribute__((unused));
const enum cg_flags *unused_cg_flags __attribute__((unused));
const struct cg_policy *unused_cg_policy __attribute__((unused));
const struct egress_key *unused_egress_key __attribute__((unused));
const struct egress_ports *unused_egress_ports __attribute__((unused));
const struct file_key *unused_file_key __attribute__((unused));

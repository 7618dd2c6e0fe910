/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Process lifecycle: fork (children of a tracked process are tracked here, in
 * the kernel, before they run), exec (binary and argv), exit (with code), and
 * discovery of MCP servers among newly exec'd processes.
 */
#ifndef MCPSEC_PROCESS_H
#define MCPSEC_PROCESS_H

#include "common.h"
#include "path.h"

static __always_inline __u64 task_cgroup(struct task_struct *t)
{
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

SEC("tp_btf/sched_process_fork")
int sched_fork(__u64 *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx[0];
	struct task_struct *child = (struct task_struct *)ctx[1];
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u64 cstart = start_ticks(BPF_CORE_READ(child, start_boottime));
	struct proc_info *p, info = {};
	__u16 rflags = 0;

	if (ptgid == ctgid)
		return 0; /* a new thread: tracked through its tgid already */

	/* the sensor is never tracked, but may start a child in a launch cgroup */
	p = ptgid == self_tgid ? NULL : current_proc(ptgid);
	if (p && (p->flags & P_TRACKED)) {
		/* candidates are not inherited: each exec is judged on its own,
		 * so a busy build with a piped stdin cannot fill the map */
		info = *p;
		info.flags = P_TRACKED;
	} else {
		__u64 cg = task_cgroup(child);
		struct proc_info *c = bpf_map_lookup_elem(&tracked_cgroups, &cg);
		if (!c)
			return 0;
		if (!c->server) {
			/* the first process in a launch cgroup roots the server;
			 * kept in the cgroup's entry for the overflow fallback */
			c->server = ctgid;
			c->server_start = cstart;
		}
		info = *c;
		info.flags = P_TRACKED;
	}
	info.start = cstart;

	if (bpf_map_update_elem(&tracked, &ctgid, &info, BPF_ANY)) {
		/* Fail closed: track the child through its cgroup instead, and
		 * make the hot path look there from now on. Records of such
		 * processes carry RF_OVERFLOW. */
		__u64 cg = task_cgroup(child);
		struct proc_info fb = info;
		count(C_TRACKED_FULL, 1);
		fb.flags = P_TRACKED | P_FALLBACK;
		fb.start = 0;
		if (bpf_map_update_elem(&tracked_cgroups, &cg, &fb, BPF_NOEXIST)) {
			struct proc_info *c = bpf_map_lookup_elem(&tracked_cgroups, &cg);
			if (c)
				c->flags |= P_FALLBACK;
		}
		tracked_overflow = 1;
		rflags = RF_OVERFLOW;
	}

	struct effect *e = scratch_effect();
	if (!e)
		return 0;
	eff_begin(e, K_FORK, 0, &info, 0);
	e->f.h.flags |= rflags;
	e->f.a[0] = ctgid;
	e->f.a[1] = cstart;
	eff_submit(e);
	return 0;
}

/* Is fd 0 of the current task a pipe or a socket: could a client drive it? */
static __always_inline int stdin_is_channel(void)
{
	__u64 ino;
	struct file *f = fd_file(0);

	return f && file_ftype(f, &ino) != FT_OTHER;
}

SEC("tp_btf/sched_process_exec")
int sched_exec(__u64 *ctx)
{
	struct linux_binprm *bprm = (struct linux_binprm *)ctx[2];
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc_info *p = current_proc(tgid);
	struct task_struct *task = bpf_get_current_task_btf();

	if (!p || (p->flags & P_CANDIDATE)) {
		/* (re)judge at every exec: a candidate that execs gets a fresh
		 * window and budget for its new program. The sensor's own
		 * binary (another sensor run, a proxy reading MCP on its stdin)
		 * is never one: known by its device and inode, not its name. */
		struct inode *bin = BPF_CORE_READ(bprm, file, f_inode);
		if (!discover || tgid == self_tgid || !stdin_is_channel() ||
		    (self_ino && BPF_CORE_READ(bin, i_ino) == self_ino && BPF_CORE_READ(bin, i_sb, s_dev) == self_dev)) {
			if (p)
				bpf_map_delete_elem(&tracked, &tgid);
			return 0;
		}
		__u64 start = start_ticks(task->group_leader->start_boottime);
		struct proc_info cand = {
			.server = tgid,
			.flags = P_CANDIDATE,
			.server_start = start,
			.start = start,
			.deadline = bpf_ktime_get_boot_ns() + candidate_window,
			.budget = candidate_budget,
		};
		if (!bpf_map_update_elem(&tracked, &tgid, &cand, BPF_ANY) && !p)
			count(C_CANDIDATES, 1);
		return 0;
	}

	signal_on_exec();
	struct effect *e = scratch_effect();
	if (!e)
		return 0;
	eff_begin(e, K_EXEC, 0, p, 0);

	/* slot 0: the binary the kernel opened; slot 1: argv; slot 2: the name as given */
	eff_file_path(e, 0, BPF_CORE_READ(bprm, file));

	unsigned long as = BPF_CORE_READ(task, mm, arg_start);
	unsigned long ae = BPF_CORE_READ(task, mm, arg_end);
	__u64 alen = ae > as ? ae - as : 0;
	if (alen > MAX_STR)
		count(C_STR_TRUNC, 1);
	eff_user_bytes(e, 1, (const void *)as, alen);

	const char *fname = BPF_CORE_READ(bprm, filename);
	__u32 off = eff_used(e);
	if (off <= SLOT_OFF_MASK) {
		long n = bpf_probe_read_kernel_str(&e->data[off & SLOT_OFF_MASK], MAX_STR, fname);
		if (n > 0)
			e->f.slen[2] = n - 1;
	}
	e->f.a[0] = BPF_CORE_READ(task, cred, uid.val);
	e->f.a[1] = BPF_CORE_READ(task, cred, euid.val);
	e->f.a[2] = ctx[1]; /* old pid */
	struct inode *inode = BPF_CORE_READ(bprm, file, f_inode);
	e->f.ino = BPF_CORE_READ(inode, i_ino);
	e->f.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	e->f.imode = BPF_CORE_READ(inode, i_mode);
	eff_submit(e);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int sched_exit(__u64 *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx[0];
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct proc_info *p = current_proc(tgid);
	struct proc_info info;

	if (!p)
		return 0;
	/* signal->live is decremented before this tracepoint: 0 means the
	 * whole thread group is gone */
	if (BPF_CORE_READ(task, signal, live.counter) > 0)
		return 0;
	info = *p;
	/* two last threads can both see live == 0: only the one that removes
	 * the entry reports the exit */
	if (!(info.flags & P_FALLBACK) && bpf_map_delete_elem(&tracked, &tgid))
		return 0;
	if (!(info.flags & P_TRACKED))
		return 0;
	struct effect *e = scratch_effect();
	if (!e)
		return 0;
	eff_begin(e, K_EXIT, 0, &info, 0);
	e->f.a[0] = BPF_CORE_READ(task, exit_code);
	e->f.a[1] = BPF_CORE_READ(task, signal, group_exit_code);
	eff_submit(e);
	return 0;
}

/* A failed execve or execveat: the registers still hold its arguments. */
static __always_inline int exec_failed(struct sysargs *s, struct proc_info *p)
{
	const char *fname = (const char *)(s->nr == 59 ? s->a[0] : s->a[1]);
	struct effect *e = scratch_effect();

	if (!e)
		return 0;
	eff_begin(e, K_EXEC_FAIL, s->nr, p, s->ret);
	eff_user_str(e, 1, fname);
	eff_base(e, 2, s->nr == 59 ? AT_FDCWD : (int)s->a[0], fname);
	eff_submit(e);
	return 0;
}

/* ---- discovery ---- */

#define SCAN_MAX 1024

struct scan_ctx {
	const char *buf; /* a copy of the bytes read, in the per-CPU path buffer */
	__u32 len;
	__u32 found;
	__u32 methods; /* method names count as evidence (a server running before the sensor) */
};

/* Does b hold the n bytes of s at i (s a string literal: unrolled into
 * comparisons with constants)? */
#define AT(b, i, s) at(b, i, s, sizeof(s) - 1)
static __always_inline int at(const char *b, __u32 i, const char *s, int n)
{
#pragma unroll
	for (int k = 0; k < 20; k++) {
		if (k >= n)
			break;
		if (b[(i + k) & (SCAN_MAX * 2 - 1)] != s[k])
			return 0;
	}
	return 1;
}

/*
 * Looks, in the first bytes a candidate read, for evidence that it speaks
 * MCP: `protocolVersion"` (every handshake carries it: initialize params,
 * or the _meta of 2026-07-28 requests), or, for a server that started
 * before the sensor and will never send its handshake again, the name of
 * an MCP method in quotes ("tools/call", "tools/list", "resources/read",
 * "resources/list", "prompts/get", "prompts/list": userspace marks such
 * candidates P_ATTACHED). Other JSON-RPC peers
 * such as language servers carry neither. The read must also begin like a
 * JSON-RPC message (its object's first member is jsonrpc, id, method or
 * params, or it is a batch), so a tool reading JSON lines that merely
 * mention MCP (jq over the sensor's own alerts) is not taken for a server.
 */
static long scan_step(__u32 i, void *arg)
{
	struct scan_ctx *s = arg;
	const char *b = s->buf;

	if (i + 16 > s->len)
		return 1;
	i &= SCAN_MAX - 1;
	if (b[i] == 'p' && AT(b, i, "protocolVersion\"")) {
		s->found = 1;
		return 1;
	}
	if (b[i] != '"' || !s->methods)
		return 0;
	if (AT(b, i, "\"tools/call\"") || AT(b, i, "\"tools/list\"") || AT(b, i, "\"resources/read\"") ||
	    AT(b, i, "\"resources/list\"") || AT(b, i, "\"prompts/get\"") || AT(b, i, "\"prompts/list\"")) {
		s->found = 1;
		return 1;
	}
	return 0;
}

/* Does the read begin like a JSON-RPC message (or batch)? */
static __always_inline int looks_jsonrpc(const char *b, __u32 len)
{
	__u32 j = 0;

#pragma unroll
	for (int k = 0; k < 8; k++) {
		char c = b[j & (SCAN_MAX * 2 - 1)];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			break;
		j++;
	}
	if (j + 12 > len)
		return 0;
	return AT(b, j, "{\"jsonrpc\"") || AT(b, j, "{\"method\"") || AT(b, j, "{\"id\"") ||
	       AT(b, j, "{\"params\"") || AT(b, j, "[{");
}

SEC("tp_btf/sys_exit")
int candidate(__u64 *ctx)
{
	struct sysargs s;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc_info *p = bpf_map_lookup_elem(&tracked, &tgid);

	if (!p || !(p->flags & P_CANDIDATE))
		return 0;
	read_args(ctx, &s);
	if (bpf_ktime_get_boot_ns() > p->deadline) {
		count(C_CANDIDATE_EXPIRED, 1);
		bpf_map_delete_elem(&tracked, &tgid);
		return 0;
	}
	/* only plain reads of stdin are looked at */
	if (s.nr != 0 || (int)s.a[0] != 0 || s.ret <= 0)
		return 0;

	__u32 zero = 0;
	struct pathbuf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!pb)
		return 0;
	struct scan_ctx sc = { .buf = pb->b, .methods = p->flags & P_ATTACHED };
	sc.len = s.ret > SCAN_MAX ? SCAN_MAX : s.ret;
	if (bpf_probe_read_user(pb->b, sc.len & (SCAN_MAX * 2 - 1), (const void *)s.a[1]))
		return 0;
	if (looks_jsonrpc(pb->b, sc.len))
		bpf_loop(SCAN_MAX, scan_step, &sc, 0);
	if (!sc.found) {
		if (p->budget <= 1) {
			count(C_CANDIDATE_EXPIRED, 1);
			bpf_map_delete_elem(&tracked, &tgid);
		} else {
			p->budget--;
		}
		return 0;
	}

	/* Promote: this process and its future children are the server. If
	 * it had read stdin before, its stream may start mid-message. */
	p->flags = P_TRACKED | (p->budget < candidate_budget || (p->flags & P_ATTACHED) ? P_ATTACHED : 0);
	count(C_DISCOVERED, 1);

	struct effect *e = scratch_effect();
	if (e) {
		__u64 ino = 0;
		struct file *f = fd_file(0);
		eff_begin(e, K_DISCOVER, s.nr, p, s.ret);
		if (f)
			e->f.a[1] = file_ftype(f, &ino);
		e->f.ino = ino;
		eff_submit(e);
	}
	/* capture the read that revealed it */
	bpf_tail_call(ctx, &sys_exit_progs, 0);
	return 0;
}

#endif

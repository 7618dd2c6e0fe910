/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared records, maps and helpers of the sensor's eBPF programs.
 *
 * Every record starts with struct rec_hdr. Effects go to the `effects` ring,
 * payload chunks to the `payloads` ring, so a payload flood cannot starve
 * effects. Structs here are turned into Go by bpf2go (-type), never mirrored
 * by hand.
 */
#ifndef MCPSEC_COMMON_H
#define MCPSEC_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#define TASK_COMM_LEN 16
#define MAX_STR 4096	     /* one string slot: a path or argv */
#define EFFECT_DATA 24576    /* slots start below 16 KiB; room for a masked length after */
#define NSLOTS 4
#define SOCKADDR_MAX 128
#define PATHBUF 4096	     /* a path is built backwards into pathbuf[0, PATHBUF) */
#define PATH_DEPTH 96	     /* components walked before a path is marked truncated */

/* Record classes. */
enum rec_class {
	REC_EFFECT = 1,
	REC_CHUNK = 2,
};

/* What an effect record describes. Go names them (decode.EffectKind). */
enum effect_kind {
	K_EXEC = 1,
	K_EXEC_FAIL,
	K_FORK,
	K_EXIT,
	K_DISCOVER,
	K_OPEN,
	K_UNLINK,
	K_RMDIR,
	K_MKDIR,
	K_RENAME,
	K_LINK,
	K_SYMLINK,
	K_CHMOD,
	K_CHOWN,
	K_TRUNCATE,
	K_CONNECT,
	K_BIND,
	K_LISTEN,
	K_ACCEPT,
	K_SENDTO,
	K_PTRACE,
	K_MOUNT,
	K_UMOUNT,
	K_UNSHARE,
	K_SETNS,
	K_MODULE,
	K_BPF,
	K_MEMFD,
	K_SETUID,
	K_CAPSET,
	K_CHROOT,
	K_KEXEC,
	K_IO_URING,
	K_PROCESS_VM,
	K_BYPASS, /* sendfile/splice/tee/vmsplice/copy_file_range moved stream bytes we cannot see */
	K_MMAP_EXEC, /* a file mapped executable: a library loaded (and where TLS uprobes may go) */
	K_EGRESS_DENIED, /* a connect or send refused by containment (cgroup sock_addr hook) */
};

/* rec_hdr.flags */
enum rec_flags {
	RF_TRUNC_S0 = 1 << 0, /* string slot 0..3 was cut at MAX_STR or by the data area */
	RF_TRUNC_S1 = 1 << 1,
	RF_TRUNC_S2 = 1 << 2,
	RF_TRUNC_S3 = 1 << 3,
	RF_FAULT = 1 << 4,     /* a user pointer could not be read */
	RF_OVERFLOW = 1 << 5,  /* tracked through the cgroup fallback: the process map was full */
};

/* Counters of everything lost or cut; summed over CPUs by pkg/loader. */
enum counter {
	C_EFFECT_RB_FULL = 0,	/* effect records dropped: ring full */
	C_CHUNK_RB_FULL,	/* payload chunks dropped: ring full */
	C_CHUNK_RB_FULL_BYTES,	/* payload bytes in those chunks */
	C_CAP_TRUNC,		/* syscalls whose payload exceeded the capture cap */
	C_CAP_TRUNC_BYTES,	/* bytes beyond the cap */
	C_FAULT,		/* payload reads that faulted (page not resident) */
	C_FAULT_BYTES,
	C_BYPASS_BYTES,		/* stream bytes moved by splice/sendfile and friends */
	C_TRACKED_FULL,		/* children not added to the process map: it was full */
	C_STREAM_MAP_FULL,	/* streams whose offset could not be kept */
	C_PATH_TRUNC,		/* paths cut at PATH_DEPTH components or PATHBUF bytes */
	C_STR_TRUNC,		/* user strings cut at MAX_STR */
	C_COMPAT_SKIPPED,	/* 32-bit syscalls of tracked processes, not decoded */
	C_CANDIDATES,		/* processes watched as possible MCP servers */
	C_DISCOVERED,		/* candidates promoted on seeing JSON-RPC */
	C_CANDIDATE_EXPIRED,	/* candidates dropped after their budget or window */
	C_SCRATCH_MISS,		/* per-CPU scratch unavailable (cannot happen; counted anyway) */
	C_MMSG_UNCAPTURED,	/* recvmmsg/sendmmsg calls on pipes or sockets: payload not captured */
	C_STALE_ENTRIES,	/* process-map entries dropped: their pid had been reused */
	C_TLS_CIPHER_BYTES,	/* TLS record bytes on sockets: not captured (the uprobes give plaintext) */
	C_TLS_CALLS,		/* SSL_read/SSL_write calls of tracked processes captured */
	C_TLS_CALL_MAP_FULL,	/* SSL_* calls missed: the per-thread call map was full */
	C_TAINTED,		/* cgroups tainted by a read of a sensitive file */
	C_EGRESS_DENIED,	/* connects and sends refused by containment */
	C_EXEC_SIGNALLED,	/* execs in a quarantined cgroup answered with a signal */
	C_SKB_DROPPED,		/* packets of a contained cgroup dropped at egress (sockets connected before) */
	C_WAKEUPS,		/* ring readers woken by a record (paid by the process whose syscall wrote it) */
	C_MAX,
};

/* Tracked process state, keyed by tgid. */
enum proc_flags {
	P_TRACKED = 1 << 0,
	P_CANDIDATE = 1 << 1, /* discovery: watching stdin for JSON-RPC */
	P_ATTACHED = 1 << 2,  /* added while running (--pid, or a candidate running before the sensor): streams start mid-way */
	P_FALLBACK = 1 << 3,  /* a cgroup entry standing in for processes the full map could not hold */
};

struct proc_info {
	__u32 server;	     /* tgid of the server's root process */
	__u32 flags;	     /* enum proc_flags */
	__u64 server_start;  /* root's start time (ticks, see start_ticks), so (server, start) is unique */
	__u64 start;	     /* this process's start time (ticks): a reused pid does not match */
	__u64 deadline;	     /* candidates: boot ns after which they are dropped */
	__u32 budget;	     /* candidates: stdin reads left to look at */
	__u32 _pad;
};

struct rec_hdr {
	__u8 class;	/* enum rec_class */
	__u8 kind;	/* enum effect_kind for effects */
	__u16 flags;	/* enum rec_flags */
	__u32 nr;	/* syscall number, 0 for sched events */
	__u64 ts;	/* CLOCK_BOOTTIME ns */
	__u32 tgid;
	__u32 tid;
	__u32 ppid;
	__u32 server;
	__u64 start;	/* process start_boottime */
	__u64 server_start;
	__u64 cgroup;
	__s64 ret;
	char comm[TASK_COMM_LEN];
};

/* The fixed part of an effect; strings follow in data[], slot i is slen[i] bytes. */
struct effect_fixed {
	struct rec_hdr h;
	__u64 a[6];	/* numeric arguments, meaning per kind */
	__u64 ino;	/* inode of the object (opened file, socket, stream) */
	__u32 dev;
	__u32 imode;	/* i_mode of that inode */
	__u16 slen[NSLOTS];
};

struct effect {
	struct effect_fixed f;
	__u8 data[EFFECT_DATA];
};

/* Stream types. */
enum ftype {
	FT_OTHER = 0,
	FT_PIPE = 1,
	FT_SOCK = 2,
	FT_TLS = 3,	/* plaintext of a TLS session, from the SSL_* uprobes */
};

/* chunk_hdr.cflags */
enum chunk_flags {
	CF_FIRST = 1 << 0,	/* first chunk of a syscall */
	CF_LAST = 1 << 1,	/* last chunk of a syscall */
	CF_CAP = 1 << 2,	/* `skipped` bytes after this chunk were cut by the capture cap */
	CF_FAULT = 1 << 3,	/* `skipped` bytes could not be read */
	CF_BYPASS = 1 << 4,	/* `skipped` bytes moved by a syscall we cannot capture */
	CF_ATTACHED = 1 << 5,	/* the process was attached mid-life: the stream may start mid-message */
};

struct chunk_hdr {
	struct rec_hdr h;	/* h.ret is the syscall's return value */
	__u64 ino;		/* stream: the pipe or socket inode */
	__u64 off;		/* stream byte offset of data[0] */
	__u32 len;		/* bytes of data in this record */
	__u32 skipped;		/* bytes after data that no record will carry */
	__u32 fd;
	__u8 dir;		/* 0: read by the server (in), 1: written (out) */
	__u8 ftype;		/* enum ftype */
	__u16 cflags;		/* enum chunk_flags */
};

/* Payload record size classes (total record size, header included). */
#define CHUNK_S 512
#define CHUNK_M 4096
#define CHUNK_L 16384
#define DATA_S (CHUNK_S - sizeof(struct chunk_hdr))
#define DATA_M (CHUNK_M - sizeof(struct chunk_hdr))
#define DATA_L (CHUNK_L - sizeof(struct chunk_hdr))

struct stream_key {
	__u64 ino;
	__u32 dir;
	__u32 _pad;
};

/* ---- configuration: set by pkg/loader before load (cilium/pwru style) ---- */
const volatile __u32 self_tgid = 0;		/* the sensor: never tracked */
const volatile __u64 self_ino = 0;		/* the sensor's binary (inode, and the kernel's dev_t): */
const volatile __u32 self_dev = 0;		/* never a candidate, whoever runs it */
const volatile __u32 discover = 0;		/* watch new processes with pipe/socket stdin */
const volatile __u64 capture_cap = 16 << 20;	/* payload bytes kept per syscall */
const volatile __u64 candidate_window = 60000000000ULL;
const volatile __u32 candidate_budget = 8;
/* Ring wakeups: the reader is woken at most once per wakeup_interval while
 * records flow (it polls in between), at once after a quiet spell, and at
 * once when a ring holds more than its wake_bytes. One wakeup per record
 * would cost the traced server more than the capture itself. */
const volatile __u64 wakeup_interval = 2000000;
const volatile __u64 effect_wake_bytes = 1 << 20;
const volatile __u64 payload_wake_bytes = 4 << 20;

/* Set when a tracked child could not be added to `tracked`: the hot path then
 * also consults `tracked_cgroups`, so a full map fails closed. */
volatile __u32 tracked_overflow = 0;

/* ---- maps ---- */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct proc_info);
} tracked SEC(".maps");

/* cgroup id -> server: processes created in these cgroups are tracked from
 * their first instruction (sensor trace -- CMD), and the overflow fallback. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct proc_info);
} tracked_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct stream_key);
	__type(value, __u64);
} stream_off SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} effects SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 << 20);
} payloads SEC(".maps");

/* Last forced wakeup of each ring (0: effects, 1: payloads), boot ns, or
 * WAKE_POLLING while its reader polls. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} last_wake SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct effect);
} effect_scratch SEC(".maps");

/* The walk's state sits with its buffer in a per-CPU map value, not on the
 * stack: map contents are not tracked exactly by the verifier, so the walk's
 * bpf_loop callback converges in a few states. */
struct pathbuf {
	char b[PATHBUF + 256];
	__u64 d;	/* struct dentry * being walked */
	__u64 mnt_root;
	__u64 mnt;	/* struct mount * */
	__u32 pos;	/* the path occupies b[pos, PATHBUF) */
	__u32 trunc;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pathbuf);
} path_scratch SEC(".maps");

/* Tail-call targets of the sys_exit dispatcher, indexed by syscall number. */
#define NR_MAX 512
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, NR_MAX);
	__type(key, __u32);
	__type(value, __u32);
} sys_exit_progs SEC(".maps");

/* ---- helpers ---- */
static __always_inline void count(__u32 c, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &c);
	if (v)
		*v += n;
}

static __always_inline struct effect *scratch_effect(void)
{
	__u32 zero = 0;
	struct effect *e = bpf_map_lookup_elem(&effect_scratch, &zero);
	if (!e)
		count(C_SCRATCH_MISS, 1);
	return e;
}

/* The tracked state of the current process, through the overflow fallback. */
/*
 * Start times are kept in whole clock ticks (USER_HZ, 10 ms), in ns: the
 * precision of /proc/PID/stat, so a process's identity reads the same from
 * the kernel and from /proc (DESIGN.md: "use one"). Two processes cannot
 * share a pid within one tick.
 */
#define TICK_NS 10000000ULL
static __always_inline __u64 start_ticks(__u64 ns)
{
	return ns / TICK_NS * TICK_NS;
}

/* The tracked state of the current process, through the overflow fallback.
 * An entry whose start time is not this process's is stale (its process
 * exited unseen and the pid was reused): it is dropped. */
static __always_inline struct proc_info *current_proc(__u32 tgid)
{
	struct proc_info *p = bpf_map_lookup_elem(&tracked, &tgid);
	if (p) {
		if (p->start) {
			struct task_struct *task = bpf_get_current_task_btf();
			if (p->start != start_ticks(task->group_leader->start_boottime)) {
				bpf_map_delete_elem(&tracked, &tgid);
				count(C_STALE_ENTRIES, 1);
				return NULL;
			}
		}
		return p;
	}
	if (!tracked_overflow)
		return NULL;
	__u64 cg = bpf_get_current_cgroup_id();
	p = bpf_map_lookup_elem(&tracked_cgroups, &cg);
	return p && (p->flags & P_FALLBACK) ? p : NULL;
}

/*
 * Hot-path reads use direct loads of BTF pointers (tp_btf programs): each
 * bpf_probe_read_kernel costs ~40 ns here, a direct load almost nothing.
 */
static __always_inline void fill_hdr(struct rec_hdr *h, __u8 class, __u8 kind, __u32 nr,
				     const struct proc_info *p, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();

	/* chunks skip what only effects need (parent, cgroup): they are many */
	if (class == REC_CHUNK) {
		h->ppid = 0;
		h->cgroup = 0;
	} else {
		h->ppid = task->real_parent->tgid;
		h->cgroup = bpf_get_current_cgroup_id();
	}

	h->class = class;
	h->kind = kind;
	h->flags = 0;
	h->nr = nr;
	h->ts = bpf_ktime_get_boot_ns();
	h->tgid = id >> 32;
	h->tid = (__u32)id;
	h->server = p ? p->server : 0;
	h->server_start = p ? p->server_start : 0;
	h->start = start_ticks(task->group_leader->start_boottime);
	h->ret = ret;
	if (p && (p->flags & P_FALLBACK))
		h->flags |= RF_OVERFLOW;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* struct file * behind fd in the current task, or NULL. */
static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file *f = NULL;

	if (fd < 0 || !fdt || (unsigned long)fd >= fdt->max_fds)
		return NULL;
	/* no variable offsets on BTF pointers: read the slot, then cast back */
	bpf_probe_read_kernel(&f, sizeof(f), (void *)((unsigned long)fdt->fd + fd * sizeof(f)));
	if (!f)
		return NULL;
	return bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
}

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFIFO 0010000

static __always_inline __u8 file_ftype(struct file *f, __u64 *ino)
{
	struct inode *inode = f->f_inode;
	__u32 mode = inode->i_mode;

	*ino = inode->i_ino;
	switch (mode & S_IFMT) {
	case S_IFIFO:
		return FT_PIPE;
	case S_IFSOCK:
		return FT_SOCK;
	}
	return FT_OTHER;
}

/* Syscall arguments from the saved registers; still intact at sys_exit
 * except for a successful execve, handled by sched_process_exec instead. */
struct sysargs {
	__u64 a[6];
	long nr;
	long ret;
};

static __always_inline void read_args(__u64 *ctx, struct sysargs *s)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];

	s->ret = (long)ctx[1];
	s->nr = regs->orig_ax;
	s->a[0] = regs->di;
	s->a[1] = regs->si;
	s->a[2] = regs->dx;
	s->a[3] = regs->r10;
	s->a[4] = regs->r8;
	s->a[5] = regs->r9;
}

/* The tracked process making the syscall this handler was tail-called for,
 * with the syscall's arguments; NULL if it is not a server member. */
static __always_inline struct proc_info *tracked_syscall(__u64 *ctx, struct sysargs *s)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc_info *p = current_proc(tgid);

	if (!p || !(p->flags & P_TRACKED))
		return NULL;
	read_args(ctx, s);
	return p;
}

/* ---- effect assembly: strings appended into data[] slots ---- */
#define SLOT_OFF_MASK (16384 - 1)
#define STR_MASK (MAX_STR - 1)

static __always_inline __u32 eff_used(struct effect *e)
{
	__u32 u = 0;
#pragma unroll
	for (int i = 0; i < NSLOTS; i++)
		u += e->f.slen[i];
	return u;
}

static __always_inline void eff_begin(struct effect *e, __u8 kind, __u32 nr,
				      const struct proc_info *p, long ret)
{
	fill_hdr(&e->f.h, REC_EFFECT, kind, nr, p, ret);
	__builtin_memset(e->f.a, 0, sizeof(e->f.a));
	e->f.ino = 0;
	e->f.dev = 0;
	e->f.imode = 0;
#pragma unroll
	for (int i = 0; i < NSLOTS; i++)
		e->f.slen[i] = 0;
}

/* Appends a NUL-terminated user string to slot `slot` (slots are filled in order). */
static __always_inline void eff_user_str(struct effect *e, int slot, const void *uptr)
{
	/* keep the slot mask below: clang drops it where it knows the range,
	 * the verifier may not */
	barrier_var(slot);
	__u32 off = eff_used(e);
	long n;

	if (!uptr || off > SLOT_OFF_MASK)
		return;
	n = bpf_probe_read_user_str(&e->data[off & SLOT_OFF_MASK], MAX_STR, uptr);
	if (n <= 0) {
		e->f.h.flags |= RF_FAULT;
		return;
	}
	n -= 1; /* drop the NUL */
	if (n >= MAX_STR - 1) {
		e->f.h.flags |= (RF_TRUNC_S0 << slot);
		count(C_STR_TRUNC, 1);
	}
	e->f.slen[slot & (NSLOTS - 1)] = n;
}

/* Appends `len` raw user bytes to slot `slot`. */
static __always_inline void eff_user_bytes(struct effect *e, int slot, const void *uptr, __u64 len)
{
	barrier_var(slot);
	__u32 off = eff_used(e);

	if (!uptr || !len || off > SLOT_OFF_MASK)
		return;
	if (len > MAX_STR) {
		len = MAX_STR;
		e->f.h.flags |= (RF_TRUNC_S0 << slot);
	}
	barrier_var(len); /* keep clang from reusing the unclamped copy */
	if (bpf_probe_read_user(&e->data[off & SLOT_OFF_MASK], len & (2 * MAX_STR - 1), uptr)) {
		e->f.h.flags |= RF_FAULT;
		return;
	}
	e->f.slen[slot & (NSLOTS - 1)] = len;
}

/* Appends `len` kernel bytes to slot `slot`. */
static __always_inline void eff_kernel_bytes(struct effect *e, int slot, const void *kptr, __u64 len)
{
	barrier_var(slot);
	__u32 off = eff_used(e);

	if (!kptr || !len || off > SLOT_OFF_MASK)
		return;
	if (len > MAX_STR)
		len = MAX_STR;
	barrier_var(len);
	if (bpf_probe_read_kernel(&e->data[off & SLOT_OFF_MASK], len & (2 * MAX_STR - 1), kptr))
		return;
	e->f.slen[slot & (NSLOTS - 1)] = len;
}

/*
 * Wakeup flags for a record of `size` bytes about to be submitted to ring
 * idx. Reading the ring's fill level touches the consumer's cache line, so
 * it is only asked for big records, the ones that can fill a ring between
 * two wakeups.
 *
 * A wakeup is paid by the traced process, in its syscall (an interrupt to
 * itself, then one to the reader's CPU): while its reader polls the ring
 * on a timer (last_wake is WAKE_POLLING), none is sent but for a ring
 * filling up; otherwise at most one per wakeup interval.
 */
#define WAKE_POLLING ((__u64)-1)

static __always_inline __u64 wake_flags(void *ring, __u32 idx, __u64 size, __u64 threshold, __u64 now)
{
	__u64 *lw = bpf_map_lookup_elem(&last_wake, &idx);

	if (!lw)
		return 0;
	if (*lw != WAKE_POLLING && now - *lw >= wakeup_interval) {
		*lw = now;
		count(C_WAKEUPS, 1);
		return BPF_RB_FORCE_WAKEUP;
	}
	if (size > 1024 && bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= threshold) {
		count(C_WAKEUPS, 1);
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void eff_submit(struct effect *e)
{
	__u64 size = sizeof(struct effect_fixed) + eff_used(e);

	if (size > sizeof(struct effect))
		size = sizeof(struct effect);
	if (bpf_ringbuf_output(&effects, e, size, wake_flags(&effects, 0, size, effect_wake_bytes, e->f.h.ts)))
		count(C_EFFECT_RB_FULL, 1);
}

/* eff_submit for an effect the reader must see at once. */
static __always_inline void eff_submit_now(struct effect *e)
{
	__u64 size = sizeof(struct effect_fixed) + eff_used(e);

	if (size > sizeof(struct effect))
		size = sizeof(struct effect);
	count(C_WAKEUPS, 1);
	if (bpf_ringbuf_output(&effects, e, size, BPF_RB_FORCE_WAKEUP))
		count(C_EFFECT_RB_FULL, 1);
}

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Escape-class syscalls of tracked processes: the calls a tool has no business
 * making (ptrace, mount, namespaces, modules, bpf, privilege changes) and the
 * ones that blind syscall capture (io_uring). Reported with their arguments
 * and result; judging them is pkg/correlate's job.
 */
#ifndef MCPSEC_ESCAPE_H
#define MCPSEC_ESCAPE_H

#include "common.h"
#include "path.h"

#define NR_ptrace 101
#define NR_setuid 105
#define NR_setgid 106
#define NR_setreuid 113
#define NR_setregid 114
#define NR_setresuid 117
#define NR_setresgid 119
#define NR_setfsuid 122
#define NR_setfsgid 123
#define NR_capset 126
#define NR_chroot 161
#define NR_mount 165
#define NR_umount2 166
#define NR_pivot_root 155
#define NR_init_module 175
#define NR_delete_module 176
#define NR_kexec_load 246
#define NR_unshare 272
#define NR_process_vm_readv 310
#define NR_process_vm_writev 311
#define NR_finit_module 313
#define NR_memfd_create 319
#define NR_kexec_file_load 320
#define NR_bpf 321
#define NR_setns 308
#define NR_io_uring_setup 425
#define NR_clone 56
#define NR_clone3 435
#define NR_open_tree 428
#define NR_move_mount 429
#define NR_fsopen 430
#define NR_fsconfig 431
#define NR_fsmount 432
#define NR_fspick 433
#define NR_mount_setattr 442

/* namespace flags of clone/unshare */
#define CLONE_NEW_ANY (0x00020000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x02000000 | 0x00000080)

struct cap_data {
	__u32 effective;
	__u32 permitted;
	__u32 inheritable;
};

SEC("tp_btf/sys_exit")
int handle_escape(__u64 *ctx)
{
	struct sysargs s;
	struct proc_info *p = tracked_syscall(ctx, &s);
	struct effect *e;

	if (!p || !(e = scratch_effect()))
		return 0;
	eff_begin(e, 0, s.nr, p, s.ret);
	/* raw arguments for the kinds that need nothing more */
	e->f.a[0] = s.a[0];
	e->f.a[1] = s.a[1];
	e->f.a[2] = s.a[2];
	e->f.a[3] = s.a[3];

	switch (s.nr) {
	case NR_ptrace:
		e->f.h.kind = K_PTRACE;
		break;
	case NR_mount:
		e->f.h.kind = K_MOUNT;
		/* slot 0 source, 1 target, 2 fstype; a[3] flags */
		eff_user_str(e, 0, (const char *)s.a[0]);
		eff_user_str(e, 1, (const char *)s.a[1]);
		eff_user_str(e, 2, (const char *)s.a[2]);
		break;
	case NR_umount2:
		e->f.h.kind = K_UMOUNT;
		eff_user_str(e, 1, (const char *)s.a[0]);
		break;
	case NR_pivot_root:
		e->f.h.kind = K_MOUNT;
		eff_user_str(e, 0, (const char *)s.a[0]);
		eff_user_str(e, 1, (const char *)s.a[1]);
		break;
	case NR_unshare:
		e->f.h.kind = K_UNSHARE;
		break;
	case NR_setns:
		e->f.h.kind = K_SETNS;
		eff_file_path(e, 0, fd_file(s.a[0]));
		break;
	case NR_init_module:
		e->f.h.kind = K_MODULE;
		break;
	case NR_finit_module:
		e->f.h.kind = K_MODULE;
		eff_file_path(e, 0, fd_file(s.a[0]));
		break;
	case NR_delete_module:
		e->f.h.kind = K_MODULE;
		eff_user_str(e, 1, (const char *)s.a[0]);
		break;
	case NR_bpf:
		e->f.h.kind = K_BPF;
		break;
	case NR_memfd_create:
		e->f.h.kind = K_MEMFD;
		eff_user_str(e, 1, (const char *)s.a[0]);
		break;
	case NR_setuid:
	case NR_setgid:
	case NR_setreuid:
	case NR_setregid:
	case NR_setresuid:
	case NR_setresgid:
	case NR_setfsuid:
	case NR_setfsgid:
		e->f.h.kind = K_SETUID;
		break;
	case NR_capset: {
		/* v2/v3 headers pass two structs: capabilities 0-31 and 32-63 */
		struct cap_data d[2] = {};
		e->f.h.kind = K_CAPSET;
		bpf_probe_read_user(&d, sizeof(d), (const void *)s.a[1]);
		e->f.a[0] = d[0].effective | (__u64)d[1].effective << 32;
		e->f.a[1] = d[0].permitted | (__u64)d[1].permitted << 32;
		e->f.a[2] = d[0].inheritable | (__u64)d[1].inheritable << 32;
		break;
	}
	case NR_clone:
	case NR_clone3: {
		/* namespaces made at clone time escape unshare's notice */
		__u64 flags = s.a[0];
		if (s.ret <= 0)
			return 0; /* the child's return, or a failure: nothing new */
		if (s.nr == NR_clone3)
			bpf_probe_read_user(&flags, sizeof(flags), (const void *)s.a[0]);
		else
			flags &= ~0xffULL; /* clone's low byte is the exit signal */
		if (!(flags & CLONE_NEW_ANY))
			return 0;
		e->f.h.kind = K_UNSHARE;
		e->f.a[0] = flags;
		e->f.a[1] = s.ret; /* the child */
		break;
	}
	case NR_open_tree:
	case NR_fspick:
	case NR_mount_setattr:
		e->f.h.kind = K_MOUNT;
		eff_base(e, 0, s.a[0], (const char *)s.a[1]);
		eff_user_str(e, 1, (const char *)s.a[1]);
		break;
	case NR_move_mount:
		e->f.h.kind = K_MOUNT;
		eff_user_str(e, 0, (const char *)s.a[1]);
		eff_user_str(e, 1, (const char *)s.a[3]);
		break;
	case NR_fsopen:
		e->f.h.kind = K_MOUNT;
		eff_user_str(e, 2, (const char *)s.a[0]);
		break;
	case NR_fsconfig:
	case NR_fsmount:
		e->f.h.kind = K_MOUNT;
		break;
	case NR_chroot:
		e->f.h.kind = K_CHROOT;
		eff_base(e, 0, AT_FDCWD, (const char *)s.a[0]);
		eff_user_str(e, 1, (const char *)s.a[0]);
		break;
	case NR_kexec_load:
	case NR_kexec_file_load:
		e->f.h.kind = K_KEXEC;
		break;
	case NR_io_uring_setup:
		e->f.h.kind = K_IO_URING;
		break;
	case NR_process_vm_readv:
	case NR_process_vm_writev:
		e->f.h.kind = K_PROCESS_VM;
		break;
	default:
		return 0;
	}
	eff_submit(e);
	return 0;
}

#endif

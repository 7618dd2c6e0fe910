/* SPDX-License-Identifier: GPL-2.0 */
/*
 * File effects of tracked processes. Opens report the path the kernel really
 * opened (walked from the new fd), plus the string that was passed. Calls
 * that leave no fd (unlink, rename, mkdir, chmod...) report the string and
 * the directory it is relative to; userspace joins them.
 */
#ifndef MCPSEC_FILES_H
#define MCPSEC_FILES_H

#include "common.h"
#include "path.h"

/* x86_64 syscall numbers */
#define NR_open 2
#define NR_truncate 76
#define NR_ftruncate 77
#define NR_rename 82
#define NR_mkdir 83
#define NR_rmdir 84
#define NR_creat 85
#define NR_link 86
#define NR_unlink 87
#define NR_symlink 88
#define NR_chmod 90
#define NR_fchmod 91
#define NR_chown 92
#define NR_fchown 93
#define NR_lchown 94
#define NR_openat 257
#define NR_mkdirat 258
#define NR_fchownat 260
#define NR_unlinkat 263
#define NR_renameat 264
#define NR_linkat 265
#define NR_symlinkat 266
#define NR_fchmodat 268
#define NR_renameat2 316
#define NR_openat2 437
#define NR_fchmodat2 452
#define NR_open_by_handle_at 304

#define NR_mmap 9
#define PROT_EXEC 0x4

/* A file mapped executable: ld.so loading a library, dlopen, or code loaded
 * by hand. Userspace looks for OpenSSL in it at once. */
SEC("tp_btf/sys_exit")
int handle_mmap(__u64 *ctx)
{
	struct sysargs s;
	struct proc_info *p = tracked_syscall(ctx, &s);
	struct effect *e;

	if (!p || s.nr != NR_mmap || !(s.a[2] & PROT_EXEC) || (int)s.a[4] < 0)
		return 0;
	if ((unsigned long)s.ret >= (unsigned long)-4095)
		return 0; /* failed: nothing was mapped */
	struct file *f = fd_file((int)s.a[4]);
	if (!f || !(e = scratch_effect()))
		return 0;
	eff_begin(e, K_MMAP_EXEC, s.nr, p, 0);
	e->f.a[0] = s.a[2]; /* prot */
	e->f.a[1] = s.a[3]; /* flags */
	e->f.a[2] = s.a[5]; /* offset */
	eff_file_path(e, 0, f);
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	e->f.ino = BPF_CORE_READ(inode, i_ino);
	e->f.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	e->f.imode = BPF_CORE_READ(inode, i_mode);
	eff_submit(e);
	return 0;
}

SEC("tp_btf/sys_exit")
int handle_open(__u64 *ctx)
{
	struct sysargs s;
	struct proc_info *p = tracked_syscall(ctx, &s);
	struct effect *e;
	const char *name = NULL;
	int dirfd = AT_FDCWD; /* fds are ints: the kernel ignores the upper half */
	__u64 flags = 0, mode = 0, resolve = 0;
	int urgent = 0;

	if (!p || !(e = scratch_effect()))
		return 0;
	switch (s.nr) {
	case NR_open:
		name = (const char *)s.a[0];
		flags = s.a[1];
		mode = s.a[2];
		break;
	case NR_creat:
		name = (const char *)s.a[0];
		flags = 01 | 0100 | 01000; /* O_WRONLY|O_CREAT|O_TRUNC */
		mode = s.a[1];
		break;
	case NR_openat:
		dirfd = s.a[0];
		name = (const char *)s.a[1];
		flags = s.a[2];
		mode = s.a[3];
		break;
	case NR_open_by_handle_at:
		/* no name: the kernel resolved a handle; the new fd tells where */
		dirfd = s.a[0];
		name = NULL;
		flags = s.a[2];
		break;
	case NR_openat2: {
		struct open_how how = {};
		dirfd = s.a[0];
		name = (const char *)s.a[1];
		bpf_probe_read_user(&how, sizeof(how), (const void *)s.a[2]);
		flags = how.flags;
		mode = how.mode;
		resolve = how.resolve;
		break;
	}
	default:
		return 0;
	}

	eff_begin(e, K_OPEN, s.nr, p, s.ret);
	e->f.a[0] = flags;
	e->f.a[1] = mode;
	e->f.a[2] = resolve;
	e->f.a[3] = dirfd;
	if (s.ret >= 0) {
		/* slot 0: the path behind the new fd */
		struct file *f = fd_file(s.ret);
		eff_file_path(e, 0, f);
		if (f) {
			struct inode *inode = BPF_CORE_READ(f, f_inode);
			e->f.ino = BPF_CORE_READ(inode, i_ino);
			e->f.dev = BPF_CORE_READ(inode, i_sb, s_dev);
			e->f.imode = BPF_CORE_READ(inode, i_mode);
			urgent = taint_on_open(e->f.dev, e->f.ino);
		}
		eff_user_str(e, 1, name);
	} else {
		/* slot 1: the string, slot 2: what it is relative to */
		eff_user_str(e, 1, name);
		eff_base(e, 2, dirfd, name);
	}
	if (urgent)
		eff_submit_now(e);
	else
		eff_submit(e);
	return 0;
}

/* Paths by string: slot 0 the base of the first path, 1 the first path, 2 the
 * base of the second, 3 the second. fd-only calls put the fd's path in slot 0. */
SEC("tp_btf/sys_exit")
int handle_fileop(__u64 *ctx)
{
	struct sysargs s;
	struct proc_info *p = tracked_syscall(ctx, &s);
	struct effect *e;
	const char *p1 = 0, *p2 = 0;
	int d1 = AT_FDCWD, d2 = AT_FDCWD, fd = -1;
	__u8 kind;

	if (!p || !(e = scratch_effect()))
		return 0;
	eff_begin(e, 0, s.nr, p, s.ret);

	switch (s.nr) {
	case NR_unlink:
		kind = K_UNLINK, p1 = (const char *)s.a[0];
		break;
	case NR_unlinkat:
		kind = (s.a[2] & 0x200) ? K_RMDIR : K_UNLINK; /* AT_REMOVEDIR */
		d1 = s.a[0], p1 = (const char *)s.a[1], e->f.a[0] = s.a[2];
		break;
	case NR_rmdir:
		kind = K_RMDIR, p1 = (const char *)s.a[0];
		break;
	case NR_mkdir:
		kind = K_MKDIR, p1 = (const char *)s.a[0], e->f.a[1] = s.a[1];
		break;
	case NR_mkdirat:
		kind = K_MKDIR, d1 = s.a[0], p1 = (const char *)s.a[1], e->f.a[1] = s.a[2];
		break;
	case NR_rename:
		kind = K_RENAME, p1 = (const char *)s.a[0], p2 = (const char *)s.a[1];
		break;
	case NR_renameat:
	case NR_renameat2:
		kind = K_RENAME, d1 = s.a[0], p1 = (const char *)s.a[1];
		d2 = s.a[2], p2 = (const char *)s.a[3], e->f.a[0] = s.nr == NR_renameat2 ? s.a[4] : 0;
		break;
	case NR_link:
		kind = K_LINK, p1 = (const char *)s.a[0], p2 = (const char *)s.a[1];
		break;
	case NR_linkat:
		kind = K_LINK, d1 = s.a[0], p1 = (const char *)s.a[1];
		d2 = s.a[2], p2 = (const char *)s.a[3], e->f.a[0] = s.a[4];
		break;
	case NR_symlink:
		/* the target is stored as given: it is not resolved at creation */
		kind = K_SYMLINK, p1 = (const char *)s.a[0], d1 = -1, p2 = (const char *)s.a[1];
		break;
	case NR_symlinkat:
		kind = K_SYMLINK, p1 = (const char *)s.a[0], d1 = -1;
		d2 = s.a[1], p2 = (const char *)s.a[2];
		break;
	case NR_chmod:
		kind = K_CHMOD, p1 = (const char *)s.a[0], e->f.a[1] = s.a[1];
		break;
	case NR_fchmod:
		kind = K_CHMOD, fd = s.a[0], e->f.a[1] = s.a[1];
		break;
	case NR_fchmodat:
	case NR_fchmodat2:
		kind = K_CHMOD, d1 = s.a[0], p1 = (const char *)s.a[1], e->f.a[1] = s.a[2];
		e->f.a[0] = s.nr == NR_fchmodat2 ? s.a[3] : 0;
		break;
	case NR_chown:
	case NR_lchown:
		kind = K_CHOWN, p1 = (const char *)s.a[0], e->f.a[2] = s.a[1], e->f.a[3] = s.a[2];
		e->f.a[0] = s.nr == NR_lchown ? 0x100 : 0; /* AT_SYMLINK_NOFOLLOW */
		break;
	case NR_fchown:
		kind = K_CHOWN, fd = s.a[0], e->f.a[2] = s.a[1], e->f.a[3] = s.a[2];
		break;
	case NR_fchownat:
		kind = K_CHOWN, d1 = s.a[0], p1 = (const char *)s.a[1];
		e->f.a[2] = s.a[2], e->f.a[3] = s.a[3], e->f.a[0] = s.a[4];
		break;
	case NR_truncate:
		kind = K_TRUNCATE, p1 = (const char *)s.a[0], e->f.a[4] = s.a[1];
		break;
	case NR_ftruncate:
		kind = K_TRUNCATE, fd = s.a[0], e->f.a[4] = s.a[1];
		break;
	default:
		return 0;
	}
	e->f.h.kind = kind;
	e->f.a[5] = fd;

	if (fd >= 0) {
		eff_file_path(e, 0, fd_file(fd));
	} else {
		if (d1 != -1)
			eff_base(e, 0, d1, p1);
		eff_user_str(e, 1, p1);
		if (p2) {
			eff_base(e, 2, d2, p2);
			eff_user_str(e, 3, p2);
		}
	}
	eff_submit(e);
	return 0;
}

#endif

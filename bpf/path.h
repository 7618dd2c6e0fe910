/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The path the kernel really used, rebuilt from a (vfsmount, dentry) pair by
 * walking d_parent and crossing mounts through struct mount. Without kprobes
 * and BPF-LSM there is no bpf_d_path; this walk is what is left, and it is
 * exact for the dentry the kernel resolved: symlinks are already followed,
 * `..` already applied, relative paths already anchored.
 */
#ifndef MCPSEC_PATH_H
#define MCPSEC_PATH_H

#include "common.h"

static long walk_step(__u32 i, void *arg)
{
	__u32 zero = 0;
	struct pathbuf *w = bpf_map_lookup_elem(&path_scratch, &zero);

	if (!w)
		return 1;
	struct dentry *d = (struct dentry *)w->d;
	struct mount *mnt = (struct mount *)w->mnt;
	struct dentry *parent = BPF_CORE_READ(d, d_parent);

	if (w->d == w->mnt_root || d == parent) {
		struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);
		if (mp == mnt || !mp)
			return 1; /* the root of the namespace */
		/* cross to the mount this one sits on */
		w->d = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = (__u64)mp;
		w->mnt_root = (__u64)BPF_CORE_READ(mp, mnt.mnt_root);
		return 0;
	}

	struct qstr name = BPF_CORE_READ(d, d_name);
	__u32 len = name.len;
	if (len > 255)
		len = 255;
	if (w->pos < len + 1) {
		w->trunc = 1;
		return 1;
	}
	w->pos -= len + 1;
	__u32 p = w->pos & (PATHBUF - 1);
	w->b[p] = '/';
	bpf_probe_read_kernel(&w->b[(p + 1) & (PATHBUF - 1)], len & 255, name.name);
	w->d = (__u64)parent;
	return 0;
}

/*
 * Builds the absolute path of (vfsmnt, dentry) at the end of the per-CPU path
 * buffer. Returns its length and sets *start; 0 on failure.
 */
static __always_inline __u32 build_path(struct vfsmount *vfsmnt, struct dentry *d,
					struct pathbuf **out, __u32 *start, int *trunc)
{
	__u32 zero = 0;
	struct pathbuf *w = bpf_map_lookup_elem(&path_scratch, &zero);

	if (!w || !vfsmnt || !d)
		return 0;
	w->d = (__u64)d;
	w->mnt = (__u64)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	w->mnt_root = (__u64)BPF_CORE_READ(vfsmnt, mnt_root);
	w->pos = PATHBUF;
	w->trunc = 0;
	long n = bpf_loop(PATH_DEPTH, walk_step, NULL, 0);
	if (n >= PATH_DEPTH)
		w->trunc = 1;
	if (w->pos >= PATHBUF) {
		/* the root itself */
		w->pos = PATHBUF - 1;
		w->b[PATHBUF - 1] = '/';
	}
	if (w->trunc) {
		count(C_PATH_TRUNC, 1);
		*trunc = 1;
	}
	*out = w;
	*start = w->pos & (PATHBUF - 1);
	return PATHBUF - *start;
}

/*
 * Appends the path of a (vfsmount, dentry) pair to an effect slot.
 *
 * A global function: the verifier checks it once, not once per call site
 * and per path leading there (inlined, the walk made handle_fileop cost
 * more than half a million verified instructions and the sensor take
 * seconds to load). Kernel pointers travel as integers for that reason.
 */
__noinline int eff_path(struct effect *e, int slot, __u64 mnt, __u64 dentry)
{
	struct pathbuf *buf;
	__u32 start = 0;
	int trunc = 0;
	__u32 len;

	if (!e || slot < 0 || slot >= NSLOTS)
		return 0;
	len = build_path((struct vfsmount *)mnt, (struct dentry *)dentry, &buf, &start, &trunc);
	if (!len)
		return 0;
	if (trunc)
		e->f.h.flags |= (RF_TRUNC_S0 << slot);
	eff_kernel_bytes(e, slot, &buf->b[start & (PATHBUF - 1)], len);
	return 0;
}

static __always_inline void eff_file_path(struct effect *e, int slot, struct file *f)
{
	if (!f)
		return;
	eff_path(e, slot, (__u64)BPF_CORE_READ(f, f_path.mnt), (__u64)BPF_CORE_READ(f, f_path.dentry));
}

static __always_inline void eff_cwd(struct effect *e, int slot)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs = BPF_CORE_READ(task, fs);

	eff_path(e, slot, (__u64)BPF_CORE_READ(fs, pwd.mnt), (__u64)BPF_CORE_READ(fs, pwd.dentry));
}

#define AT_FDCWD -100

/*
 * The directory a relative path string is resolved against: the cwd, or the
 * directory behind dirfd. Nothing for an absolute string. Userspace joins the
 * two lexically; this is the fallback for calls that leave no fd to walk.
 */
static __always_inline void eff_base(struct effect *e, int slot, int dirfd, const char *uptr)
{
	char first = 0;

	if (!uptr)
		return;
	bpf_probe_read_user(&first, 1, uptr);
	if (first == '/')
		return;
	if (dirfd == AT_FDCWD)
		eff_cwd(e, slot);
	else
		eff_file_path(e, slot, fd_file(dirfd));
}

#endif

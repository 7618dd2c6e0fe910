/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Payload capture: the bytes tracked processes read from and write to pipes
 * and sockets, sent in chunks through the `payloads` ring. Each chunk carries
 * its stream's byte offset, so userspace knows every gap exactly; bytes past
 * the capture cap, bytes that fault, bytes dropped on a full ring and bytes
 * moved by splice and friends are counted and marked, never silently lost.
 */
#ifndef MCPSEC_IO_H
#define MCPSEC_IO_H

#include "common.h"
#include "net.h"

#define NR_read 0
#define NR_write 1
#define NR_pread64 17
#define NR_pwrite64 18
#define NR_readv 19
#define NR_writev 20
#define NR_sendfile 40
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47
#define NR_splice 275
#define NR_tee 276
#define NR_vmsplice 278
#define NR_preadv 295
#define NR_pwritev 296
#define NR_copy_file_range 326
#define NR_preadv2 327
#define NR_pwritev2 328

#define MSG_PEEK 2
#define MSG_TRUNC 0x20
#define NR_recvmmsg 299
#define NR_sendmmsg 307
#define FMODE_WRITE 0x2
#define LOOP_MAX (1 << 16)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct chunk_hdr);
} chunk_tmpl SEC(".maps");

/* Reserves n bytes of a stream's offset space; returns the first byte's offset. */
static __always_inline __u64 stream_reserve(__u64 ino, __u8 dir, __u64 n)
{
	struct stream_key k = { .ino = ino, .dir = dir };
	__u64 *v = bpf_map_lookup_elem(&stream_off, &k);

	if (!v) {
		__u64 zero = 0;
		bpf_map_update_elem(&stream_off, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&stream_off, &k);
		if (!v) {
			count(C_STREAM_MAP_FULL, 1);
			return 0;
		}
	}
	return __sync_fetch_and_add(v, n);
}

/*
 * The capture loop's state lives in a per-CPU map value, not on the stack:
 * the verifier does not track map contents exactly, so bpf_loop's callback
 * converges in a few states instead of being walked once per chunk size.
 */
struct cap_ctx {
	const struct iovec *iov; /* NULL for a flat buffer */
	__u64 iovcnt;
	__u64 idx;
	const char *cur;
	__u64 cur_left;
	__u64 left;	/* bytes still to capture */
	__u64 skip;	/* bytes past the cap, reported on the last chunk */
	__u64 off;
	__u32 first;
	__u32 done;	/* the last chunk went out (or a fault chunk did) */
	__u32 full;	/* stopped: the ring was full (counted) */
	__u32 ioverr;	/* stopped: the iovec array could not be read */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cap_ctx);
} cap_state SEC(".maps");

static __always_inline int emit_chunk(struct cap_ctx *c, struct chunk_hdr *tmpl, struct chunk_hdr *r,
				      __u64 n)
{
	__builtin_memcpy(r, tmpl, sizeof(*r));
	r->off = c->off;
	r->len = n;
	r->cflags |= c->first ? CF_FIRST : 0;
	c->first = 0;
	if (bpf_probe_read_user((void *)(r + 1), n, c->cur)) {
		/* not resident: say exactly which bytes are missing, then stop */
		__u64 missing = c->left + c->skip;
		r->len = 0;
		r->skipped = missing;
		r->cflags |= CF_FAULT | CF_LAST;
		count(C_FAULT, 1);
		count(C_FAULT_BYTES, c->left);
		c->done = 1;
		return 1;
	}
	c->cur += n;
	c->cur_left -= n;
	c->left -= n;
	c->off += n;
	if (!c->left) {
		r->cflags |= CF_LAST;
		if (c->skip) {
			r->skipped = c->skip;
			r->cflags |= CF_CAP;
		}
		c->done = 1;
	}
	return 0;
}

#define EMIT_CLASS(SIZE, DATA)                                                         \
	do {                                                                           \
		struct chunk_hdr *r = bpf_ringbuf_reserve(&payloads, SIZE, 0);         \
		if (!r)                                                                \
			goto full;                                                     \
		if (n > DATA)                                                          \
			n = DATA;                                                      \
		emit_chunk(c, t, r, n);                                                \
		bpf_ringbuf_submit(r, wake_flags(&payloads, 1, SIZE, payload_wake_bytes, r->h.ts)); \
	} while (0)

static long cap_step(__u32 i, void *arg)
{
	__u32 zero = 0;
	struct cap_ctx *c = bpf_map_lookup_elem(&cap_state, &zero);
	struct chunk_hdr *t = bpf_map_lookup_elem(&chunk_tmpl, &zero);
	__u64 n;

	if (!c || !t)
		return 1;
	if (c->done || !c->left)
		return 1;
	if (c->iov && !c->cur_left) {
		struct iovec v = {};
		if (c->idx >= c->iovcnt)
			return 1;
		if (bpf_probe_read_user(&v, sizeof(v), &c->iov[c->idx & 1023])) {
			c->ioverr = 1;
			return 1;
		}
		c->idx++;
		c->cur = v.iov_base;
		c->cur_left = v.iov_len;
		/* go on and emit from it in this same iteration */
	}
	n = c->left < c->cur_left ? c->left : c->cur_left;
	if (!n)
		return c->iov ? 0 : 1;
	if (n <= DATA_S)
		EMIT_CLASS(CHUNK_S, DATA_S);
	else if (n <= DATA_M)
		EMIT_CLASS(CHUNK_M, DATA_M);
	else
		EMIT_CLASS(CHUNK_L, DATA_L);
	return 0;
full:
	count(C_CHUNK_RB_FULL, 1);
	count(C_CHUNK_RB_FULL_BYTES, c->left); /* bytes past the cap are counted as cut */
	c->full = 1;
	return 1;
}

/* A zero-length chunk announcing `n` stream bytes that no chunk will carry. */
static __always_inline void emit_gap(struct chunk_hdr *tmpl, __u64 off, __u64 n, __u16 why)
{
	struct chunk_hdr *r = bpf_ringbuf_reserve(&payloads, CHUNK_S, 0);

	if (!r) {
		count(C_CHUNK_RB_FULL, 1);
		return;
	}
	__builtin_memcpy(r, tmpl, sizeof(*r));
	r->off = off;
	r->len = 0;
	r->skipped = n;
	r->cflags |= why | CF_FIRST | CF_LAST;
	bpf_ringbuf_submit(r, wake_flags(&payloads, 1, CHUNK_S, payload_wake_bytes, r->h.ts));
}

/* Fills the chunk template for a stream. */
static __always_inline struct chunk_hdr *chunk_tmpl_fill(struct sysargs *s, struct proc_info *p, int fd,
							 __u8 dir, __u64 ino, __u8 ft)
{
	__u32 zero = 0;
	struct chunk_hdr *t = bpf_map_lookup_elem(&chunk_tmpl, &zero);

	if (!t)
		return NULL;
	fill_hdr(&t->h, REC_CHUNK, 0, s->nr, p, s->ret);
	t->ino = ino;
	t->fd = fd;
	t->dir = dir;
	t->ftype = ft;
	t->len = 0;
	t->skipped = 0;
	t->cflags = (p->flags & P_ATTACHED) ? CF_ATTACHED : 0;
	return t;
}

/* The pipe or socket behind fd: its type, or FT_OTHER. */
static __always_inline __u8 stream_of(int fd, __u64 *ino)
{
	struct file *f = fd_file(fd);

	return f ? file_ftype(f, ino) : FT_OTHER;
}

/* Fills the chunk template for fd; NULL if fd is not a pipe or socket. */
static __always_inline struct chunk_hdr *chunk_begin(struct sysargs *s, struct proc_info *p,
						     int fd, __u8 dir)
{
	__u64 ino = 0;
	__u8 ft = stream_of(fd, &ino);

	if (ft == FT_OTHER)
		return NULL;
	return chunk_tmpl_fill(s, p, fd, dir, ino, ft);
}

/* Fills a reserved record for a syscall whose bytes fit it whole. */
static __always_inline void one_chunk(struct chunk_hdr *r, struct sysargs *s, struct proc_info *p,
				      int fd, __u8 dir, __u64 ino, __u8 ft, __u64 off)
{
	fill_hdr(&r->h, REC_CHUNK, 0, s->nr, p, s->ret);
	r->ino = ino;
	r->off = off;
	r->fd = fd;
	r->dir = dir;
	r->ftype = ft;
	r->len = s->ret;
	r->skipped = 0;
	r->cflags = CF_FIRST | CF_LAST | ((p->flags & P_ATTACHED) ? CF_ATTACHED : 0);
}

#define ONE_CHUNK(SIZE, DATA)                                                          \
	do {                                                                           \
		struct chunk_hdr *r = bpf_ringbuf_reserve(&payloads, SIZE, 0);         \
		if (!r) {                                                              \
			count(C_CHUNK_RB_FULL, 1);                                     \
			count(C_CHUNK_RB_FULL_BYTES, n);                               \
			return;                                                        \
		}                                                                      \
		one_chunk(r, s, p, fd, dir, ino, ft, off);                             \
		if (n > DATA)                                                          \
			n = DATA;                                                      \
		if (bpf_probe_read_user((void *)(r + 1), n, cur)) {                    \
			r->len = 0;                                                    \
			r->skipped = n;                                                \
			r->cflags |= CF_FAULT;                                         \
			count(C_FAULT, 1);                                             \
			count(C_FAULT_BYTES, n);                                       \
		}                                                                      \
		bpf_ringbuf_submit(r, wake_flags(&payloads, 1, SIZE, payload_wake_bytes, r->h.ts)); \
	} while (0)

/* Where captured bytes are: one flat buffer (cur, limit) or an iovec array. */
struct capsrc {
	const char *cur;
	__u64 limit;	/* size of the flat buffer */
	const struct iovec *iov;
	__u64 iovcnt;
	__u64 trunc;	/* MSG_TRUNC: the result counts bytes not copied */
};

/* Sends the s->ret bytes of a syscall (or an SSL_* call) on stream
 * (ino, dir) to the payload ring, at stream offset off. */
static __always_inline void capture(struct sysargs *s, struct proc_info *p, int fd, __u8 dir,
				    __u64 ino, __u8 ft, __u64 off, struct capsrc *src)
{
	__u64 n = s->ret;
	const char *cur = src->cur;

	/* The common case, one buffer whose bytes fit one record: straight
	 * into the ring, no template, no loop. */
	if (cur && !src->trunc && n <= DATA_M && n <= src->limit && n <= capture_cap) {
		if (n <= DATA_S)
			ONE_CHUNK(CHUNK_S, DATA_S);
		else
			ONE_CHUNK(CHUNK_M, DATA_M);
		return;
	}

	struct chunk_hdr *t = chunk_tmpl_fill(s, p, fd, dir, ino, ft);
	if (!t)
		return;
	if (src->trunc) {
		/* a TCP recv with MSG_TRUNC discards without copying: nothing to
		 * capture, but the stream moved on */
		count(C_BYPASS_BYTES, n);
		emit_gap(t, off, n, CF_BYPASS);
		return;
	}

	__u32 zero = 0;
	struct cap_ctx *cp = bpf_map_lookup_elem(&cap_state, &zero);
	if (!cp)
		return;
	__builtin_memset(cp, 0, sizeof(*cp));
#define c (*cp)
	c.iov = src->iov;
	c.iovcnt = src->iovcnt;
	c.cur = cur;
	c.off = off;
	c.left = n;
	if (!c.iov)
		c.cur_left = src->limit < n ? src->limit : n;
	if (c.left > capture_cap) {
		c.skip = c.left - capture_cap;
		c.left = capture_cap;
		count(C_CAP_TRUNC, 1);
		count(C_CAP_TRUNC_BYTES, c.skip);
	}
	if (c.iovcnt > 1024)
		c.iovcnt = 1024;
	c.first = 1;
	/* an iteration per chunk; an iovec adds at most one (a short or
	 * empty one) */
	__u64 loops = c.left / DATA_S + 2 * c.iovcnt + 2;
	if (loops > LOOP_MAX)
		loops = LOOP_MAX;
	bpf_loop(loops, cap_step, NULL, 0);
	if (!c.done && !c.full && c.left) {
		/* buffers shorter than the return value (MSG_TRUNC on a
		 * datagram), or an unreadable iovec array: mark the rest */
		if (c.ioverr) {
			count(C_FAULT, 1);
			count(C_FAULT_BYTES, c.left);
		} else {
			count(C_CAP_TRUNC, 1);
			count(C_CAP_TRUNC_BYTES, c.left);
		}
		emit_gap(t, c.off, c.left + c.skip, c.ioverr ? CF_FAULT : CF_CAP);
	}
#undef c
}

#define TLS_HANDSHAKE 0x16

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);	/* socket inode */
	__type(value, __u8);
} tls_socks SEC(".maps");

/*
 * TLS ciphertext is of no use to the decoder: a socket whose first bytes
 * (either way) are a TLS handshake record is marked, and its bytes are
 * counted, not captured. The SSL_* uprobes deliver the plaintext.
 */
static __always_inline int tls_socket(__u64 ino, __u8 ft, struct stream_key *k, const char *cur, long n)
{
	if (ft != FT_SOCK)
		return 0;
	if (bpf_map_lookup_elem(&tls_socks, &ino)) {
		count(C_TLS_CIPHER_BYTES, n);
		return 1;
	}
	if (!cur || n < 3 || bpf_map_lookup_elem(&stream_off, k))
		return 0; /* not the stream's first bytes */
	__u8 rec[3] = {};
	if (bpf_probe_read_user(rec, sizeof(rec), cur) || rec[0] != TLS_HANDSHAKE || rec[1] != 3)
		return 0;
	__u8 one = 1;
	bpf_map_update_elem(&tls_socks, &ino, &one, BPF_ANY);
	count(C_TLS_CIPHER_BYTES, n);
	return 1;
}

SEC("tp_btf/sys_exit")
int handle_io(__u64 *ctx)
{
	struct sysargs s;
	struct proc_info *p = tracked_syscall(ctx, &s);
	struct user_msghdr mh = {};
	struct capsrc src = {};
	__u8 dir = 0;

	if (!p)
		return 0;

	switch (s.nr) {
	case NR_read:
	case NR_pread64:
		src.cur = (const char *)s.a[1], src.limit = s.a[2];
		break;
	case NR_write:
	case NR_pwrite64:
		dir = 1, src.cur = (const char *)s.a[1], src.limit = s.a[2];
		break;
	case NR_readv:
	case NR_preadv:
	case NR_preadv2:
		src.iov = (const struct iovec *)s.a[1], src.iovcnt = s.a[2];
		break;
	case NR_writev:
	case NR_pwritev:
	case NR_pwritev2:
		dir = 1, src.iov = (const struct iovec *)s.a[1], src.iovcnt = s.a[2];
		break;
	case NR_recvfrom:
		if (s.a[3] & MSG_PEEK)
			return 0;
		src.trunc = s.a[3] & MSG_TRUNC;
		src.cur = (const char *)s.a[1], src.limit = s.a[2];
		break;
	case NR_sendto:
		emit_sendto(&s, p, (const void *)s.a[4], s.a[5]);
		dir = 1, src.cur = (const char *)s.a[1], src.limit = s.a[2];
		break;
	case NR_recvmsg:
		if (s.a[2] & MSG_PEEK)
			return 0;
		src.trunc = s.a[2] & MSG_TRUNC;
		bpf_probe_read_user(&mh, sizeof(mh), (const void *)s.a[1]);
		src.iov = mh.msg_iov, src.iovcnt = mh.msg_iovlen;
		break;
	case NR_sendmsg:
		bpf_probe_read_user(&mh, sizeof(mh), (const void *)s.a[1]);
		emit_sendto(&s, p, mh.msg_name, mh.msg_namelen);
		dir = 1, src.iov = mh.msg_iov, src.iovcnt = mh.msg_iovlen;
		break;
	default:
		return 0;
	}
	if (s.ret <= 0)
		return 0;

	int fd = s.a[0];
	__u64 ino = 0;
	__u8 ft = stream_of(fd, &ino);
	if (ft == FT_OTHER)
		return 0;
	struct stream_key k = { .ino = ino, .dir = dir };
	if (tls_socket(ino, ft, &k, src.cur, s.ret))
		return 0;
	__u64 off = stream_reserve(ino, dir, s.ret);
	capture(&s, p, fd, dir, ino, ft, off, &src);
	return 0;
}

/* sendfile, splice, tee, vmsplice, copy_file_range: the bytes move inside the
 * kernel where no syscall buffer shows them. The stream offset still advances
 * so the decoder sees the gap, and its cause is marked. */
SEC("tp_btf/sys_exit")
int handle_bypass(__u64 *ctx)
{
	struct sysargs s;
	struct proc_info *p = tracked_syscall(ctx, &s);
	int in = -1, out = -1;

	if (!p)
		return 0;
	if (s.ret <= 0)
		return 0;
	switch (s.nr) {
	case NR_sendfile:
		out = s.a[0], in = s.a[1];
		break;
	case NR_splice:
	case NR_copy_file_range:
		in = s.a[0], out = s.a[2];
		break;
	case NR_tee:
		out = s.a[1]; /* tee copies: its input is not consumed */
		break;
	case NR_vmsplice: {
		/* into a pipe's write end, or out of its read end */
		struct file *f = fd_file(s.a[0]);
		if (f && (f->f_mode & FMODE_WRITE))
			out = s.a[0];
		else
			in = s.a[0];
		break;
	}
	case NR_recvmmsg:
	case NR_sendmmsg: {
		/* the result counts messages, not bytes: the stream's offset
		 * cannot follow, so the call itself is what is reported */
		__u64 ino;
		struct file *f = fd_file(s.a[0]);
		if (!f || file_ftype(f, &ino) == FT_OTHER)
			return 0;
		count(C_MMSG_UNCAPTURED, 1);
		struct effect *e = scratch_effect();
		if (e) {
			eff_begin(e, K_BYPASS, s.nr, p, s.ret);
			e->f.a[0] = (int)s.a[0];
			e->f.a[1] = -1;
			e->f.ino = ino;
			eff_submit(e);
		}
		return 0;
	}
	default:
		return 0;
	}
	int streams = 0;
	struct chunk_hdr *t = chunk_begin(&s, p, in, 0);
	if (t) {
		emit_gap(t, stream_reserve(t->ino, 0, s.ret), s.ret, CF_BYPASS);
		streams++;
	}
	t = chunk_begin(&s, p, out, 1);
	if (t) {
		emit_gap(t, stream_reserve(t->ino, 1, s.ret), s.ret, CF_BYPASS);
		streams++;
	}
	if (!streams)
		return 0; /* file to file (cp): no stream of ours */
	count(C_BYPASS_BYTES, s.ret);

	struct effect *e = scratch_effect();
	if (e) {
		eff_begin(e, K_BYPASS, s.nr, p, s.ret);
		e->f.a[0] = in;
		e->f.a[1] = out;
		eff_submit(e);
	}
	return 0;
}

#endif

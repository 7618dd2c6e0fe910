/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Network effects of tracked processes: connect, bind, listen, accept and
 * sends with an explicit destination. Addresses are kept as raw sockaddr
 * bytes (from the call, or rebuilt from the socket) and formatted in Go.
 */
#ifndef MCPSEC_NET_H
#define MCPSEC_NET_H

#include "common.h"

#define NR_connect 42
#define NR_accept 43
#define NR_bind 49
#define NR_listen 50
#define NR_accept4 288

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10

static __always_inline struct sock *file_sock(struct file *f)
{
	struct socket *so;

	if (!f)
		return NULL;
	so = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(so, sk);
}

/* Socket family, type and protocol into a[1..3], its inode into ino. */
static __always_inline struct sock *eff_sock(struct effect *e, int fd)
{
	struct file *f = fd_file(fd);
	struct sock *sk;
	__u64 ino = 0;

	if (!f || file_ftype(f, &ino) != FT_SOCK)
		return NULL;
	sk = file_sock(f);
	e->f.ino = ino;
	e->f.a[0] = fd;
	e->f.a[1] = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->f.a[2] = BPF_CORE_READ(sk, sk_type);
	e->f.a[3] = BPF_CORE_READ(sk, sk_protocol);
	return sk;
}

struct addrbuf {
	__u8 b[SOCKADDR_MAX];
};

/* Rebuilds the local (remote=0) or peer (remote=1) sockaddr of sk into slot. */
static __always_inline void eff_sk_addr(struct effect *e, int slot, struct sock *sk, int remote)
{
	struct addrbuf a = {};
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u32 len = 0;

	if (family == AF_INET) {
		struct sockaddr_in *in = (void *)a.b;
		in->sin_family = AF_INET;
		if (remote) {
			in->sin_port = BPF_CORE_READ(sk, __sk_common.skc_dport);
			in->sin_addr.s_addr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		} else {
			in->sin_port = bpf_htons(BPF_CORE_READ(sk, __sk_common.skc_num));
			in->sin_addr.s_addr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		}
		len = sizeof(*in);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 *in6 = (void *)a.b;
		in6->sin6_family = AF_INET6;
		if (remote) {
			in6->sin6_port = BPF_CORE_READ(sk, __sk_common.skc_dport);
			BPF_CORE_READ_INTO(&in6->sin6_addr, sk, __sk_common.skc_v6_daddr);
		} else {
			in6->sin6_port = bpf_htons(BPF_CORE_READ(sk, __sk_common.skc_num));
			BPF_CORE_READ_INTO(&in6->sin6_addr, sk, __sk_common.skc_v6_rcv_saddr);
		}
		len = sizeof(*in6);
	} else if (family == AF_UNIX) {
		struct unix_sock *us = (struct unix_sock *)sk;
		struct sock *peer = remote ? BPF_CORE_READ(us, peer) : sk;
		struct unix_address *ua = BPF_CORE_READ((struct unix_sock *)peer, addr);
		if (ua) {
			int l = BPF_CORE_READ(ua, len);
			if (l > 0 && l <= (int)sizeof(struct sockaddr_un))
				len = l;
			bpf_probe_read_kernel(a.b, sizeof(struct sockaddr_un), &ua->name[0]);
		} else {
			a.b[0] = AF_UNIX; /* unnamed */
			len = 2;
		}
	}
	if (len)
		eff_kernel_bytes(e, slot, a.b, len & (SOCKADDR_MAX - 1));
}

static __always_inline void eff_user_addr(struct effect *e, int slot, const void *uaddr, __u64 len)
{
	if (len > SOCKADDR_MAX)
		len = SOCKADDR_MAX;
	eff_user_bytes(e, slot, uaddr, len);
}

SEC("tp_btf/sys_exit")
int handle_net(__u64 *ctx)
{
	struct sysargs s;
	struct proc_info *p = tracked_syscall(ctx, &s);
	struct effect *e;
	struct sock *sk;

	if (!p || !(e = scratch_effect()))
		return 0;

	switch (s.nr) {
	case NR_connect:
		eff_begin(e, K_CONNECT, s.nr, p, s.ret);
		sk = eff_sock(e, s.a[0]);
		if (sk && (s.ret == 0 || s.ret == -115 /* EINPROGRESS */) &&
		    (e->f.a[1] == AF_INET || e->f.a[1] == AF_INET6))
			/* where the kernel is connecting, not what the buffer says
			 * now: another thread may have rewritten it since */
			eff_sk_addr(e, 0, sk, 1);
		else
			eff_user_addr(e, 0, (const void *)s.a[1], s.a[2]);
		break;
	case NR_bind:
		eff_begin(e, K_BIND, s.nr, p, s.ret);
		eff_sock(e, s.a[0]);
		eff_user_addr(e, 0, (const void *)s.a[1], s.a[2]);
		break;
	case NR_listen:
		eff_begin(e, K_LISTEN, s.nr, p, s.ret);
		sk = eff_sock(e, s.a[0]);
		e->f.a[4] = s.a[1]; /* backlog */
		if (sk)
			eff_sk_addr(e, 0, sk, 0);
		break;
	case NR_accept:
	case NR_accept4:
		if (s.ret < 0)
			return 0; /* EAGAIN on a non-blocking listener is noise */
		eff_begin(e, K_ACCEPT, s.nr, p, s.ret);
		sk = eff_sock(e, s.ret);
		if (sk) {
			eff_sk_addr(e, 0, sk, 1);
			eff_sk_addr(e, 1, sk, 0);
		}
		e->f.a[4] = s.a[0]; /* listening fd */
		break;
	default:
		return 0;
	}
	eff_submit(e);
	return 0;
}

/* A send with an explicit destination (sendto, or sendmsg with msg_name). */
static __always_inline void emit_sendto(struct sysargs *s, struct proc_info *p, const void *uaddr,
					__u64 alen)
{
	struct effect *e;

	if (!uaddr || !alen)
		return;
	e = scratch_effect();
	if (!e)
		return;
	eff_begin(e, K_SENDTO, s->nr, p, s->ret);
	eff_sock(e, s->a[0]);
	e->f.a[4] = s->nr == 44 ? s->a[2] : 0; /* length asked */
	eff_user_addr(e, 0, uaddr, alen);
	eff_submit(e);
}

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Containment in the kernel: decisions that must not lose the race with an
 * exfiltrating tool are taken here, from maps userspace fills ahead of time.
 *
 * - A tracked process that opens a file on the sensitive list (matched by
 *   device and inode, so links and bind mounts do not hide it) taints its
 *   cgroup.
 * - cgroup sock_addr programs (connect4/6, sendmsg4/6) on the sensor's
 *   cgroup subtree refuse, with EPERM, egress of a quarantined cgroup, of a
 *   cgroup with an enforced allow-list outside it, and of a tainted cgroup
 *   whose policy denies egress on taint. Refusals are effects.
 * - A quarantined cgroup whose policy says so has its processes killed or
 *   stopped at exec (bpf_send_signal: the exec has happened; what it would
 *   run next does not).
 */
#ifndef MCPSEC_CONTAIN_H
#define MCPSEC_CONTAIN_H

#include "common.h"

enum cg_flags {
	CG_QUARANTINE = 1 << 0,	 /* deny all egress */
	CG_ALLOWLIST = 1 << 1,	 /* egress only to the allow-list, from the first connect */
	CG_TAINT_DENY = 1 << 2,	 /* once tainted, egress only to the allow-list */
	CG_TAINTED = 1 << 3,	 /* reported in refusals: the cgroup is tainted (cg_taint) */
	CG_KILL_ON_EXEC = 1 << 4,
	CG_STOP_ON_EXEC = 1 << 5,
	CG_INDICATOR = 1 << 6,	 /* in a refusal: a fleet indicator names the destination */
};

/* Written by userspace only; the kernel's own state (taint) is a map of
 * its own, so a policy update never races with a taint. */
struct cg_policy {
	__u64 flags;	/* enum cg_flags */
	__u64 _reserved;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);	/* cgroup id */
	__type(value, struct cg_policy);
} cg_policies SEC(".maps");

/* Tainted cgroups: written by the kernel at a sensitive read (boot ns),
 * cleared by userspace on release. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} cg_taint SEC(".maps");

struct file_key {
	__u32 dev;	/* kernel encoding: major << 20 | minor */
	__u32 _pad;
	__u64 ino;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct file_key);
	__type(value, __u8);
} sensitive_files SEC(".maps");

/* Allow-list entries: (cgroup, address prefix) -> ports. IPv4 addresses
 * are stored mapped into IPv6 (::ffff:a.b.c.d). */
struct egress_key {
	__u32 prefixlen;	/* 64 (the cgroup) + address bits */
	__u64 cgroup;
	__u8 addr[16];
} __attribute__((packed));

#define EGRESS_PORTS 8
struct egress_ports {
	__u16 port[EGRESS_PORTS];	/* host order; all zero: any port */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct egress_key);
	__type(value, struct egress_ports);
} egress_allow SEC(".maps");

/* Destinations refused whatever the policy allows: fleet indicators. The
 * key's cgroup is the server's, or 0 for every server with a policy. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct egress_key);
	__type(value, struct egress_ports);
} egress_deny SEC(".maps");

/* Called at an open's exit with the new file's identity. */
/* Taints the cgroup on an open of a sensitive file; says whether the file
 * is one (its effect then wakes the reader at once: detection waits for
 * no poll). */
static __always_inline int taint_on_open(__u32 dev, __u64 ino)
{
	struct file_key k = { .dev = dev, .ino = ino };

	if (!bpf_map_lookup_elem(&sensitive_files, &k))
		return 0;
	__u64 cg = bpf_get_current_cgroup_id();
	if (!bpf_map_lookup_elem(&cg_policies, &cg))
		return 1; /* not a cgroup the sensor manages */
	__u64 now = bpf_ktime_get_boot_ns();
	if (!bpf_map_update_elem(&cg_taint, &cg, &now, BPF_NOEXIST))
		count(C_TAINTED, 1);
	return 1;
}

static __always_inline int port_ok(struct egress_ports *v, __u16 port)
{
	int any = 1;
#pragma unroll
	for (int i = 0; i < EGRESS_PORTS; i++) {
		if (v->port[i]) {
			any = 0;
			if (v->port[i] == port)
				return 1;
		}
	}
	return any;
}

/* A refused connect or send, reported as an effect. */
static __always_inline void emit_denied(struct bpf_sock_addr *ctx, __u64 cg, __u64 flags, int v6)
{
	__u32 zero = 0;
	struct effect *e = bpf_map_lookup_elem(&effect_scratch, &zero);
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if (!e)
		return;
	__builtin_memset(&e->f, 0, sizeof(e->f));
	e->f.h.class = REC_EFFECT;
	e->f.h.kind = K_EGRESS_DENIED;
	e->f.h.ts = bpf_ktime_get_boot_ns();
	e->f.h.tgid = tgid;
	e->f.h.tid = (__u32)id;
	e->f.h.cgroup = cg;
	e->f.h.ret = -1; /* EPERM */
	struct proc_info *p = bpf_map_lookup_elem(&tracked, &tgid);
	if (p) {
		e->f.h.server = p->server;
		e->f.h.server_start = p->server_start;
		e->f.h.start = p->start;
	}
	bpf_get_current_comm(e->f.h.comm, sizeof(e->f.h.comm));
	e->f.a[0] = flags;
	e->f.a[1] = ctx->type;
	e->f.a[2] = ctx->protocol;
	/* slot 0: the destination, as a sockaddr the decoder formats */
	if (v6) {
		struct sockaddr_in6 *sa = (struct sockaddr_in6 *)e->data;
		sa->sin6_family = 10;
		sa->sin6_port = ctx->user_port;
		sa->sin6_addr.in6_u.u6_addr32[0] = ctx->user_ip6[0];
		sa->sin6_addr.in6_u.u6_addr32[1] = ctx->user_ip6[1];
		sa->sin6_addr.in6_u.u6_addr32[2] = ctx->user_ip6[2];
		sa->sin6_addr.in6_u.u6_addr32[3] = ctx->user_ip6[3];
		e->f.slen[0] = sizeof(*sa);
	} else {
		struct sockaddr_in *sa = (struct sockaddr_in *)e->data;
		sa->sin_family = 2;
		sa->sin_port = ctx->user_port;
		sa->sin_addr.s_addr = ctx->user_ip4;
		e->f.slen[0] = sizeof(*sa);
	}
	__u64 size = sizeof(struct effect_fixed) + e->f.slen[0];
	if (bpf_ringbuf_output(&effects, e, size & 0xfff, wake_flags(&effects, 0, size, effect_wake_bytes, e->f.h.ts)))
		count(C_EFFECT_RB_FULL, 1);
}

static __always_inline int egress(struct bpf_sock_addr *ctx, int v6)
{
	__u64 cg = bpf_get_current_cgroup_id();
	struct egress_key k = { .prefixlen = 64 + 128, .cgroup = cg };
	if (v6) {
		/* field by field: the verifier refuses a ctx pointer moved by an offset */
		__u32 w[4];
		w[0] = ctx->user_ip6[0];
		w[1] = ctx->user_ip6[1];
		w[2] = ctx->user_ip6[2];
		w[3] = ctx->user_ip6[3];
		barrier_var(w[0]);
		__builtin_memcpy(k.addr, w, 16);
	} else {
		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		__u32 ip = ctx->user_ip4;
		__builtin_memcpy(&k.addr[12], &ip, 4);
	}
	__u16 port = bpf_ntohs(ctx->user_port);
	struct cg_policy *p = bpf_map_lookup_elem(&cg_policies, &cg);
	__u64 f = p ? p->flags : 0;
	/* a destination a fleet indicator names: refused to this cgroup, or
	 * to every cgroup under the hooks (cgroup 0), whatever its policy
	 * allows, and with no policy yet (a server just found) */
	struct egress_ports *d = bpf_map_lookup_elem(&egress_deny, &k);
	if (!d) {
		k.cgroup = 0;
		d = bpf_map_lookup_elem(&egress_deny, &k);
		k.cgroup = cg;
	}
	if (d && port_ok(d, port)) {
		f |= CG_INDICATOR;
		goto deny;
	}
	if (!p)
		return 1;
	if (bpf_map_lookup_elem(&cg_taint, &cg))
		f |= CG_TAINTED;
	int check = (f & CG_ALLOWLIST) || ((f & CG_TAINT_DENY) && (f & CG_TAINTED));
	if (!(f & CG_QUARANTINE) && !check)
		return 1;
	if (!(f & CG_QUARANTINE)) {
		struct egress_ports *v = bpf_map_lookup_elem(&egress_allow, &k);
		if (v && port_ok(v, port))
			return 1;
	}
deny:
	count(C_EGRESS_DENIED, 1);
	emit_denied(ctx, cg, f, v6);
	return 0; /* EPERM */
}

SEC("cgroup/connect4")
int egress_connect4(struct bpf_sock_addr *ctx) { return egress(ctx, 0); }

SEC("cgroup/connect6")
int egress_connect6(struct bpf_sock_addr *ctx) { return egress(ctx, 1); }

SEC("cgroup/sendmsg4")
int egress_sendmsg4(struct bpf_sock_addr *ctx) { return egress(ctx, 0); }

SEC("cgroup/sendmsg6")
int egress_sendmsg6(struct bpf_sock_addr *ctx) { return egress(ctx, 1); }

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

/*
 * The sock_addr hooks see connect and unconnected sends; a socket connected
 * before the cgroup was contained sends through neither. Its packets are
 * dropped here, at egress, unless their destination is allow-listed.
 */
SEC("cgroup_skb/egress")
int egress_skb(struct __sk_buff *skb)
{
	__u64 cg = bpf_skb_cgroup_id(skb);
	struct cg_policy *p = bpf_map_lookup_elem(&cg_policies, &cg);

	if (!p)
		return 1;
	__u64 f = p->flags;
	if (bpf_map_lookup_elem(&cg_taint, &cg))
		f |= CG_TAINTED;
	if (!(f & CG_QUARANTINE) && !((f & CG_TAINT_DENY) && (f & CG_TAINTED)))
		return 1;
	struct egress_key k = { .prefixlen = 64 + 128, .cgroup = cg };
	__u8 proto = 0;
	__u32 l4 = 0;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			goto drop;
		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		__builtin_memcpy(&k.addr[12], &ip.daddr, 4);
		proto = ip.protocol;
		l4 = ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			goto drop;
		__builtin_memcpy(k.addr, &ip6.daddr, 16);
		proto = ip6.nexthdr;
		l4 = sizeof(ip6);
	} else {
		goto drop;
	}
	if (!(f & CG_QUARANTINE)) {
		__u16 port = 0;
		if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && l4 < 64)
			bpf_skb_load_bytes(skb, l4 + 2, &port, sizeof(port)); /* destination port */
		struct egress_ports *v = bpf_map_lookup_elem(&egress_allow, &k);
		if (v && port_ok(v, bpf_ntohs(port)))
			return 1;
	}
drop:
	count(C_SKB_DROPPED, 1);
	return 0;
}

/* At exec: a quarantined cgroup whose policy says so is signalled. */
static __always_inline void signal_on_exec(void)
{
	__u64 cg = bpf_get_current_cgroup_id();
	struct cg_policy *p = bpf_map_lookup_elem(&cg_policies, &cg);

	if (!p || !(p->flags & (CG_KILL_ON_EXEC | CG_STOP_ON_EXEC)))
		return;
	bpf_send_signal((p->flags & CG_KILL_ON_EXEC) ? 9 : 19); /* SIGKILL, SIGSTOP */
	count(C_EXEC_SIGNALLED, 1);
}

#endif

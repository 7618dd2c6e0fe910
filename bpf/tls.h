/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TLS plaintext from uprobes on OpenSSL's SSL_read, SSL_write and their _ex
 * variants, in libssl and in binaries that embed OpenSSL (node). The entry
 * probe keeps the call's buffer per thread; the return probe captures the
 * bytes the call really moved, as a stream of its own keyed by (process,
 * SSL*): OpenSSL has no BTF and node's SSL objects use memory BIOs, so
 * the SSL object, not the socket, is what names the session. SSL_free ends
 * the stream, so a reused SSL* starts a new one at offset 0.
 */
#ifndef MCPSEC_TLS_H
#define MCPSEC_TLS_H

#include "common.h"
#include "io.h"

/* Pseudo syscall numbers in the records of TLS chunks. */
#define NR_SSL_READ 1000
#define NR_SSL_WRITE 1001

struct tls_call {
	__u64 ssl;
	const char *buf;
	__u64 *done;	/* _ex: where the byte count is written */
	__u32 dir;	/* 0: SSL_read, 1: SSL_write */
	__u32 ex;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);	/* pid_tgid */
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* The stream of an SSL object: its address, tagged with the process and a
 * bit no socket inode uses. */
static __always_inline __u64 tls_stream(__u32 tgid, __u64 ssl)
{
	return (1ULL << 63) | (((__u64)tgid << 40) ^ ssl);
}

static __always_inline int tls_enter(void *ssl, const void *buf, __u64 *done, __u32 dir, __u32 ex)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct proc_info *p = current_proc(id >> 32);

	if (!p || !(p->flags & P_TRACKED))
		return 0;
	struct tls_call c = { .ssl = (__u64)ssl, .buf = buf, .done = done, .dir = dir, .ex = ex };
	if (bpf_map_update_elem(&tls_calls, &id, &c, BPF_ANY))
		count(C_TLS_CALL_MAP_FULL, 1);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_read, void *ssl, void *buf, int num)
{
	return tls_enter(ssl, buf, NULL, 0, 0);
}

SEC("uprobe")
int BPF_KPROBE(tls_read_ex, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	return tls_enter(ssl, buf, readbytes, 0, 1);
}

SEC("uprobe")
int BPF_KPROBE(tls_write, void *ssl, const void *buf, int num)
{
	return tls_enter(ssl, buf, NULL, 1, 0);
}

SEC("uprobe")
int BPF_KPROBE(tls_write_ex, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	return tls_enter(ssl, buf, written, 1, 1);
}

SEC("uretprobe")
int BPF_KRETPROBE(tls_ret, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *c = bpf_map_lookup_elem(&tls_calls, &id);

	if (!c)
		return 0;
	struct tls_call call = *c;
	bpf_map_delete_elem(&tls_calls, &id);
	struct proc_info *p = current_proc(id >> 32);
	if (!p || ret <= 0)
		return 0;
	__u64 n = ret;
	if (call.ex) {
		/* SSL_read_ex / SSL_write_ex return 1 and store the count */
		if (ret != 1 || !call.done || bpf_probe_read_user(&n, sizeof(n), call.done))
			return 0;
	}
	if (!n || n > (1ULL << 31))
		return 0;
	count(C_TLS_CALLS, 1);

	struct sysargs s = {};
	s.nr = call.dir ? NR_SSL_WRITE : NR_SSL_READ;
	s.ret = n;
	__u64 ino = tls_stream(id >> 32, call.ssl);
	__u64 off = stream_reserve(ino, call.dir, n);
	struct capsrc src = { .cur = call.buf, .limit = n };
	capture(&s, p, -1, call.dir, ino, FT_TLS, off, &src);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_free, void *ssl)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct proc_info *p = current_proc(id >> 32);

	if (!p)
		return 0;
	struct stream_key k = { .ino = tls_stream(id >> 32, (__u64)ssl) };
	bpf_map_delete_elem(&stream_off, &k);
	k.dir = 1;
	bpf_map_delete_elem(&stream_off, &k);
	return 0;
}

#endif

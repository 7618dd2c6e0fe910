//go:build ignore
// SPDX-License-Identifier: GPL-2.0
/*
 * The floor for the overhead benchmark: the sensor's hooks with nothing in
 * them. Overhead is reported three ways, as cloudflare/ebpf_exporter does:
 * nothing attached, these empty programs, the real ones.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sys_exit")
int empty_sys_exit(__u64 *ctx)
{
	return 0;
}

SEC("tp_btf/sched_process_fork")
int empty_fork(__u64 *ctx)
{
	return 0;
}

SEC("tp_btf/sched_process_exec")
int empty_exec(__u64 *ctx)
{
	return 0;
}

SEC("tp_btf/sched_process_exit")
int empty_exit(__u64 *ctx)
{
	return 0;
}

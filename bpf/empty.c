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

SEC("raw_tracepoint/sys_exit")
int empty_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

SEC("raw_tracepoint/sched_process_fork")
int empty_fork(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

SEC("raw_tracepoint/sched_process_exec")
int empty_exec(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int empty_exit(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

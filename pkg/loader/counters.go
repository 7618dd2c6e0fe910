package loader

import (
	"fmt"
)

// Counter names, in the order of enum counter in bpf/common.h.
var counterNames = map[sensorCounter]string{
	sensorCounterC_EFFECT_RB_FULL:      "effect_ring_full",
	sensorCounterC_CHUNK_RB_FULL:       "payload_ring_full",
	sensorCounterC_CHUNK_RB_FULL_BYTES: "payload_ring_full_bytes",
	sensorCounterC_CAP_TRUNC:           "capture_cap_cut",
	sensorCounterC_CAP_TRUNC_BYTES:     "capture_cap_cut_bytes",
	sensorCounterC_FAULT:               "payload_fault",
	sensorCounterC_FAULT_BYTES:         "payload_fault_bytes",
	sensorCounterC_BYPASS_BYTES:        "bypass_bytes",
	sensorCounterC_TRACKED_FULL:        "process_map_full",
	sensorCounterC_STREAM_MAP_FULL:     "stream_map_full",
	sensorCounterC_PATH_TRUNC:          "path_cut",
	sensorCounterC_STR_TRUNC:           "string_cut",
	sensorCounterC_COMPAT_SKIPPED:      "compat_syscalls_skipped",
	sensorCounterC_CANDIDATES:          "candidates",
	sensorCounterC_DISCOVERED:          "discovered",
	sensorCounterC_CANDIDATE_EXPIRED:   "candidates_expired",
	sensorCounterC_SCRATCH_MISS:        "scratch_miss",
	sensorCounterC_MMSG_UNCAPTURED:     "mmsg_uncaptured",
	sensorCounterC_STALE_ENTRIES:       "stale_entries",
	sensorCounterC_TLS_CIPHER_BYTES:    "tls_ciphertext_bytes",
	sensorCounterC_TLS_CALLS:           "tls_calls",
	sensorCounterC_TLS_CALL_MAP_FULL:   "tls_call_map_full",
	sensorCounterC_TAINTED:             "cgroups_tainted",
	sensorCounterC_EGRESS_DENIED:       "egress_denied",
	sensorCounterC_EXEC_SIGNALLED:      "execs_signalled",
	sensorCounterC_SKB_DROPPED:         "egress_packets_dropped",
	sensorCounterC_WAKEUPS:             "ring_wakeups",
}

// Counters are the kernel-side counters summed over CPUs, by name, plus the
// programs' recursion misses (runs the kernel skipped because the program was
// already running on that CPU: events lost before any of our code ran).
func (o *Objects) Counters() (map[string]uint64, error) {
	out := make(map[string]uint64, len(counterNames)+1)
	for c, name := range counterNames {
		var per []uint64
		if err := o.objs.Counters.Lookup(uint32(c), &per); err != nil {
			return nil, fmt.Errorf("reading counter %s: %w", name, err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		out[name] = sum
	}
	var misses uint64
	for name, p := range o.programs() {
		st, err := p.Stats()
		if err != nil {
			return nil, fmt.Errorf("reading stats of %s: %w", name, err)
		}
		misses += st.RecursionMisses
	}
	out["recursion_misses"] = misses
	return out, nil
}

// Losses sums counters by what they mean: records dropped before userspace
// saw them (rings full, programs skipped), and data cut short (capture cap,
// faults, path and string limits).
func Losses(k map[string]uint64) (drops, cut uint64) {
	drops = k["effect_ring_full"] + k["payload_ring_full"] + k["recursion_misses"] + k["scratch_miss"] + k["tls_call_map_full"]
	cut = k["capture_cap_cut"] + k["payload_fault"] + k["path_cut"] + k["string_cut"]
	return drops, cut
}

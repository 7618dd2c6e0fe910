// Command benchtable prints the figures of the real-server and scale
// benchmarks (test/bench) as the tables the README quotes: for each
// server and variant, the median of every run (an alternating pair of
// plain and traced servers) and the range of the p50 ratio.
//
// Usage: benchtable [FILE] (default: standard input; `make bench` writes
// bench.txt)
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// runs are a benchmark's runs: metric name -> one value per run.
type runs map[string][]float64

func main() {
	in := io.Reader(os.Stdin)
	if len(os.Args) > 1 {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchtable: %v\n", err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	byName, order := parse(in)
	real := pick(order, "BenchmarkRealServers/")
	scale := pick(order, "BenchmarkScale/")
	if len(real)+len(scale) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no BenchmarkRealServers or BenchmarkScale lines (run `make bench`, or go test -bench 'RealServers|Scale' ./test/bench/)")
		os.Exit(1)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(real) > 0 {
		fmt.Fprintln(w, "tools/call round trip (medians)\tpairs\tplain p50 µs\ttraced p50 µs\tp50 ratio\t(range)\tp99 ratio\tsensor user µs/msg\tsystem µs/msg\t")
		for _, name := range real {
			r := byName[name]
			fmt.Fprintf(w, "%s\t%d\t%.0f\t%.0f\t%.3f\t%.3f–%.3f\t%.3f\t%.0f\t%.0f\t\n", strings.TrimPrefix(name, "BenchmarkRealServers/"),
				len(r["p50-ratio"]), median(r["plain-p50-us"]), median(r["traced-p50-us"]), median(r["p50-ratio"]),
				minOf(r["p50-ratio"]), maxOf(r["p50-ratio"]), median(r["p99-ratio"]), median(r["sensor-usr-us/msg"]), median(r["sensor-sys-us/msg"]))
		}
		fmt.Fprintln(w, "\t")
	}
	if len(scale) > 0 {
		fmt.Fprintln(w, "the daemon at scale\trss MiB\tanon MiB\tpeak MiB\tcpu %\tcpu µs/msg\tmsgs/s\tdetect p50 ms\tdetect p99 ms\tdrops\t")
		for _, name := range scale {
			r := byName[name]
			fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%.0f\t%.1f\t%.0f\t%.0f\t%s\t%s\t%s\t\n", strings.TrimPrefix(name, "BenchmarkScale/"),
				median(r["rss-MiB"]), median(r["anon-MiB"]), median(r["peak-rss-MiB"]), median(r["cpu-%"]), median(r["cpu-us/msg"]),
				median(r["msgs/s"]), opt(r["detect-p50-ms"], "%.1f"), opt(r["detect-p99-ms"], "%.1f"),
				opt(sum(r["ring-drops"], r["queue-drops"], r["lost-msgs"]), "%.0f"))
		}
	}
	w.Flush()
}

// parse reads `go test -bench` lines: name, iterations, then value-unit
// pairs.
func parse(in io.Reader) (map[string]runs, []string) {
	byName := map[string]runs{}
	var order []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // the GOMAXPROCS suffix
			}
		}
		r := byName[name]
		if r == nil {
			r = runs{}
			byName[name] = r
			order = append(order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			r[f[i+1]] = append(r[f[i+1]], v)
		}
	}
	return byName, order
}

func pick(order []string, prefix string) []string {
	var out []string
	for _, n := range order {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Min(v)
}

func maxOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Max(v)
}

// sum adds metrics run by run (nil if none of them is there).
func sum(lists ...[]float64) []float64 {
	var out []float64
	for _, l := range lists {
		for i, v := range l {
			if i >= len(out) {
				out = append(out, 0)
			}
			out[i] += v
		}
	}
	return out
}

// opt formats the median, or "-" where the benchmark has no such metric.
func opt(v []float64, format string) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf(format, median(v))
}

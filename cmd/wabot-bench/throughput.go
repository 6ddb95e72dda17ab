package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// baseline is the bare whatsmeow auto-reply program (cmd/wabot-baseline)
// running beside wabot against the same fake.
type baseline struct {
	cmd     *exec.Cmd
	pprof   string // its profiler's address, with -profile
	numbers []string
	link    time.Duration
}

func startBaseline(root string, n int) (*baseline, error) {
	dir := filepath.Join(root, "baseline")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	args := []string{"-fakewa", filepath.Join(root, "fakewa.json"), "-dir", dir, "-tenants", strconv.Itoa(n)}
	b := &baseline{}
	if *profile != "" {
		b.pprof = freeAddr()
		args = append(args, "-pprof", b.pprof)
	}
	b.cmd = exec.Command(*blBin, args...)
	b.cmd.Stderr = os.Stderr
	stdout, _ := b.cmd.StdoutPipe()
	t0 := time.Now()
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	var out struct{ Numbers []string }
	if err := json.NewDecoder(bufio.NewReader(stdout)).Decode(&out); err != nil {
		b.stop()
		return nil, fmt.Errorf("reading the baseline's numbers: %w", err)
	}
	go io.Copy(io.Discard, stdout)
	b.numbers, b.link = out.Numbers, time.Since(t0)
	return b, nil
}

func (b *baseline) stop() {
	if b.cmd.ProcessState == nil {
		b.cmd.Process.Signal(syscall.SIGTERM)
		b.cmd.Wait()
	}
}

// shape is one kind of load run.
type shape struct {
	name string
	rate float64 // 0: closed loop
	hot  bool    // the first tenant gets half of the messages
}

// loadResult is one run of one program.
type loadResult struct {
	sent, replies, lost       float64
	perS, p50, p99, othersP99 float64
	cpuOwn, cpuFake           float64 // seconds per 1,000 replies
}

// throughput runs every load shape -reps times on wabot and on the
// baseline, in turns, and reports medians side by side.
func throughput(rep *report, control string, fakePid int, w *idleResult, numbers []string, bl *baseline) error {
	n := len(numbers)
	blNumbers := bl.numbers[:n]
	shapes := []shape{{name: "closed loop"}}
	var steady []float64
	for _, s := range strings.Split(*rates, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("-rates: %q is not a rate", s)
		}
		steady = append(steady, r)
	}
	for _, r := range steady {
		shapes = append(shapes, shape{name: fmt.Sprintf("steady %.0f msg/s", r), rate: r})
	}
	for _, r := range steady {
		shapes = append(shapes, shape{name: fmt.Sprintf("skewed %.0f msg/s", r), rate: r, hot: true})
	}
	topRate := slices.Max(append(steady, 0))
	type key struct {
		shape int
		prog  string
	}
	results := map[key][]loadResult{}
	pids := map[string]int{"wabot": w.cmd.Process.Pid, "baseline": bl.cmd.Process.Pid}
	profiled := map[string]bool{}
	for si, sh := range shapes {
		for r := range *reps {
			order := []string{"wabot", "baseline"}
			if r%2 == 1 { // neither always goes first
				order = []string{"baseline", "wabot"}
			}
			for _, prog := range order {
				nums := numbers
				if prog == "baseline" {
					nums = blNumbers
				}
				hot := ""
				if sh.hot {
					hot = nums[0]
				}
				var stopProfile func() error
				if *profile != "" && !profiled[prog] && sh.rate == topRate && !sh.hot {
					profiled[prog] = true
					addr := envValue(w.env, "WABOT_PPROF")
					if prog == "baseline" {
						addr = bl.pprof
					}
					stopProfile = startProfile(addr, prog+"-")
				}
				own0, fake0 := cpuOf(pids[prog]), cpuOf(fakePid)
				res, err := load(control, nums, sh.rate, hot)
				if err != nil {
					return err
				}
				own, fk := cpuOf(pids[prog])-own0, cpuOf(fakePid)-fake0
				if stopProfile != nil {
					if err := stopProfile(); err != nil {
						fmt.Fprintln(os.Stderr, "profile:", err)
					}
				}
				f := func(k string) float64 { v, _ := res[k].(float64); return v }
				lr := loadResult{sent: f("sent"), replies: f("replies"), lost: f("lost"), perS: f("replies_per_s"),
					p50: f("p50_ms"), p99: f("p99_ms"), othersP99: f("others_p99_ms")}
				if lr.replies > 0 {
					lr.cpuOwn, lr.cpuFake = own/lr.replies*1000, fk/lr.replies*1000
				}
				fmt.Fprintf(os.Stderr, "%s %s run %d: %+v\n", prog, sh.name, r, lr)
				results[key{si, prog}] = append(results[key{si, prog}], lr)
				time.Sleep(time.Second) // let the last acks and receipts settle
			}
		}
	}
	med := func(rs []loadResult, f func(loadResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", a/b)
	}

	rep.line("## Replies: wabot against bare whatsmeow")
	rep.line("")
	rep.line("Both answer \"pong <text>\" to %d tenants × %d contacts of the same fake process; wabot through its whole pipeline (rules, message log, rate limits off), "+
		"the baseline (cmd/wabot-baseline: whatsmeow clients with SQLite device stores, answering on the event goroutine, %d tenants linked) and nothing else. "+
		"wabot has %d tenants connected. Each run lasts %.0f s; they take turns, %d runs of each, medians. "+
		"CPU is user+system seconds from /proc/<pid>/stat over the run per 1,000 replies: the program's own and the fake's while it served that program.",
		n, *contacts, len(bl.numbers), w.n, *seconds, *reps)
	rep.line("")
	rep.line("| run | figure | wabot | baseline | wabot / baseline |")
	rep.line("|---|---|---:|---:|---:|")
	for si, sh := range shapes {
		if sh.hot {
			continue
		}
		wr, br := results[key{si, "wabot"}], results[key{si, "baseline"}]
		row := func(fig string, f func(loadResult) float64, format string) {
			a, b := med(wr, f), med(br, f)
			rep.line("| %s | %s | "+format+" | "+format+" | %s |", sh.name, fig, a, b, ratio(a, b))
		}
		if sh.rate > 0 {
			rep.line("| %s | answered / sent | %.0f / %.0f | %.0f / %.0f | |", sh.name,
				med(wr, func(r loadResult) float64 { return r.replies }), med(wr, func(r loadResult) float64 { return r.sent }),
				med(br, func(r loadResult) float64 { return r.replies }), med(br, func(r loadResult) float64 { return r.sent }))
		}
		row("replies/s", func(r loadResult) float64 { return r.perS }, "%.0f")
		row("p50", func(r loadResult) float64 { return r.p50 }, "%.1f ms")
		row("p99", func(r loadResult) float64 { return r.p99 }, "%.1f ms")
		row("CPU s / 1k replies, own", func(r loadResult) float64 { return r.cpuOwn }, "%.2f")
		row("CPU s / 1k replies, fake", func(r loadResult) float64 { return r.cpuFake }, "%.2f")
	}
	rep.line("")
	rep.line("Skewed load: the first tenant gets half of all messages, the other %d share the rest. "+
		"*others p99* is the latency of the other tenants' replies; the target is at most 2× the uniform run's p99 at the same rate.", n-1)
	rep.line("")
	rep.line("| rate | program | answered / sent | p99 uniform | p99 all, skewed | p99 others, skewed | others skewed / uniform |")
	rep.line("|---:|---|---:|---:|---:|---:|---:|")
	for si, sh := range shapes {
		if !sh.hot {
			continue
		}
		uni := slices.IndexFunc(shapes, func(u shape) bool { return !u.hot && u.rate == sh.rate })
		for _, prog := range []string{"wabot", "baseline"} {
			sk, un := results[key{si, prog}], results[key{uni, prog}]
			u99, o99 := med(un, func(r loadResult) float64 { return r.p99 }), med(sk, func(r loadResult) float64 { return r.othersP99 })
			rep.line("| %.0f | %s | %.0f / %.0f | %.1f ms | %.1f ms | %.1f ms | %s |", sh.rate, prog,
				med(sk, func(r loadResult) float64 { return r.replies }), med(sk, func(r loadResult) float64 { return r.sent }),
				u99, med(sk, func(r loadResult) float64 { return r.p99 }), o99, ratio(o99, u99))
		}
	}
	rep.line("")
	rep.line("RSS after the load: wabot %.1f MB (%d tenants), baseline %.1f MB (%d tenants), fake %.1f MB.",
		mb(rssOf(w.cmd.Process.Pid)), w.n, mb(rssOf(bl.cmd.Process.Pid)), len(bl.numbers), mb(rssOf(fakePid)))
	rep.line("")
	return nil
}

// startProfile takes a program's CPU profile for the length of a run and its
// allocations over the same span (the difference of two snapshots: go
// tool pprof -base allocs-before.pb.gz allocs-after.pb.gz).
func startProfile(addr, prefix string) func() error {
	save := func(url, name string) error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		f, err := os.Create(filepath.Join(*profile, prefix+name))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(f, resp.Body)
		return err
	}
	os.MkdirAll(*profile, 0o755)
	base := "http://" + addr + "/debug/pprof/"
	errs := make(chan error, 1)
	before := save(base+"allocs", "allocs-before.pb.gz")
	go func() { errs <- save(fmt.Sprintf("%sprofile?seconds=%d", base, max(1, int(*seconds))), "cpu.pb.gz") }()
	return func() error {
		err := <-errs
		if err == nil {
			err = save(base+"allocs", "allocs-after.pb.gz")
		}
		if before != nil {
			return before
		}
		return err
	}
}

// Command benchtab reads `go test -bench` output and prints, for every
// benchmark measured as impl=protows and impl=gorilla, the median of each
// metric per implementation and their ratio (protows / gorilla). A
// benchmark with a further implementation (impl=gorilla-percon) gets rows
// of protows against it too, marked with its name. With -svg it also draws
// echo throughput and idle memory per connection side by side.
//
//	go test -run '^$' -bench . -count 5 ./wsactor/ | go run ./internal/benchtab -svg bench.svg
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

var line = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

type key struct{ bench, impl, unit string }

func main() {
	svg := flag.String("svg", "", "write a chart of echo msgs/s and idle B/conn to this file")
	flag.Parse()
	samples := map[key][]float64{}
	var benches []string
	seen := map[string]bool{}
	others := map[string][]string{} // per benchmark: impls besides protows and gorilla
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		bench, impl := m[1], ""
		if i := strings.Index(bench, "/impl="); i >= 0 {
			bench, impl = bench[:i], bench[i+len("/impl="):]
		}
		if !seen[bench] {
			seen[bench] = true
			benches = append(benches, bench)
		}
		if impl != "" && impl != "protows" && impl != "gorilla" && !slices.Contains(others[bench], impl) {
			others[bench] = append(others[bench], impl)
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			k := key{bench, impl, f[i+1]}
			samples[k] = append(samples[k], v)
		}
	}
	med := func(k key) (float64, bool) {
		v := samples[k]
		if len(v) == 0 {
			return 0, false
		}
		v = slices.Clone(v)
		sort.Float64s(v)
		return v[len(v)/2], true
	}
	units := []string{"msgs/s", "p50-us", "p99-us", "cpu-us/msg", "B/conn", "heap-B/conn", "stack-B/conn", "warm-B/conn", "goroutines/conn", "ms-all-received",
		"p50-ms", "p99-ms", "max-ms", "changes/s", "diffs/s", "B/entry"}
	fmt.Printf("%-36s %-16s %14s %14s %8s\n", "benchmark", "metric", "protows", "gorilla", "ratio")
	for _, b := range benches {
		for _, u := range units {
			p, okP := med(key{b, "protows", u})
			g, okG := med(key{b, "gorilla", u})
			switch {
			case okP && okG:
				fmt.Printf("%-36s %-16s %14.2f %14.2f %7.2fx\n", b, u, p, g, p/g)
			case okP || okG:
				v, _ := med(key{b, "", u})
				if okP {
					v = p
				} else if okG {
					v = g
				}
				fmt.Printf("%-36s %-16s %14.2f\n", b, u, v)
			}
		}
		for _, o := range others[b] {
			for _, u := range units {
				p, okP := med(key{b, "protows", u})
				v, okO := med(key{b, o, u})
				switch {
				case okP && okO:
					fmt.Printf("%-36s %-16s %14.2f %14.2f %7.2fx  [against %s]\n", b, u, p, v, p/v, o)
				case okO:
					fmt.Printf("%-36s %-16s %14s %14.2f %8s  [%s]\n", b, u, "", v, "", o)
				}
			}
		}
		for _, u := range units { // benchmarks without an impl (cluster send)
			if v, ok := med(key{b, "", u}); ok {
				fmt.Printf("%-36s %-16s %14.2f\n", b, u, v)
			}
		}
	}
	if *svg != "" {
		f, err := os.Create(*svg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		var bars []bar
		for _, b := range benches {
			if strings.HasPrefix(b, "BenchmarkEcho") {
				p, _ := med(key{b, "protows", "msgs/s"})
				g, _ := med(key{b, "gorilla", "msgs/s"})
				bars = append(bars, bar{strings.TrimPrefix(b, "Benchmark") + " msgs/s", p, g})
			}
		}
		for _, b := range benches {
			if strings.HasPrefix(b, "BenchmarkIdleConn") {
				p, _ := med(key{b, "protows", "B/conn"})
				g, _ := med(key{b, "gorilla", "B/conn"})
				bars = append(bars, bar{strings.TrimPrefix(b, "Benchmark") + " B/conn", p, g})
			}
		}
		writeSVG(f, bars)
	}
}

type bar struct {
	label            string
	protows, gorilla float64
}

// writeSVG draws one row per measurement: two bars scaled to the larger.
func writeSVG(w io.Writer, bars []bar) {
	const width, rowH, labelW, barW = 860, 46, 330, 440
	h := 40 + rowH*len(bars) + 30
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, h)
	fmt.Fprintf(w, `<text x="10" y="20" font-size="14" font-weight="bold">protows vs raw gorilla/websocket (same run)</text>`+"\n")
	fmt.Fprintf(w, `<rect x="%d" y="8" width="12" height="12" fill="#2b6cb0"/><text x="%d" y="19">protows</text>`+"\n", labelW, labelW+16)
	fmt.Fprintf(w, `<rect x="%d" y="8" width="12" height="12" fill="#a0aec0"/><text x="%d" y="19">gorilla</text>`+"\n", labelW+90, labelW+106)
	for i, b := range bars {
		y := 40 + i*rowH
		top := max(b.protows, b.gorilla)
		if top == 0 {
			top = 1
		}
		fmt.Fprintf(w, `<text x="10" y="%d">%s</text>`+"\n", y+18, b.label)
		for j, v := range []float64{b.protows, b.gorilla} {
			color := []string{"#2b6cb0", "#a0aec0"}[j]
			bw := int(v / top * barW)
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="16" fill="%s"/><text x="%d" y="%d">%.0f</text>`+"\n",
				labelW, y+j*18, bw, color, labelW+bw+4, y+j*18+13, v)
		}
	}
	fmt.Fprintln(w, `</svg>`)
}

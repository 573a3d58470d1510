package perf

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// WritePlot writes a self-contained HTML page (inline SVG, no scripts, no
// network) with, for each row, its latency per second (p50, p99, max; log
// scale) and its throughput per second.
func WritePlot(w io.Writer, env Env, rows []Row) error {
	var b strings.Builder
	b.WriteString("<!doctype html><meta charset=utf-8><title>kraftbench</title>\n")
	b.WriteString("<style>body{font:14px sans-serif;margin:2em}svg{background:#fafafa;margin:4px 0}text{font:11px sans-serif}</style>\n")
	fmt.Fprintf(&b, "<h1>kraftbench</h1><p><code>%s</code><br>%s, commit %s, load %s / %s, %d CPUs, transparent huge pages %s%s</p>\n",
		html.EscapeString(env.Command), env.Date.Format("2006-01-02 15:04:05 MST"), html.EscapeString(env.Commit),
		env.LoadBefore, env.LoadAfter, env.CPUs, html.EscapeString(env.THP), html.EscapeString(env.procsNote()))
	for _, r := range rows {
		fmt.Fprintf(&b, "<h2>%s</h2><p>%.0f ops/s, p50 %s, p99 %s, max %s, commit floor %s (fdatasync p50 %s + 2 × RTT %s)</p>\n",
			html.EscapeString(r.Workload()), r.OpsPerSec, FormatDuration(r.P50us), FormatDuration(r.P99us),
			FormatDuration(r.MaxUs), FormatDuration(r.CommitFloorUs), FormatDuration(r.FsyncP50us), FormatDuration(r.RTTP50us))
		if len(r.Timeline) == 0 {
			continue
		}
		xs := make([]float64, len(r.Timeline))
		var p50, p99, mx, ops []float64
		for i, iv := range r.Timeline {
			xs[i] = iv.EndS
			p50, p99, mx = append(p50, iv.P50us), append(p99, iv.P99us), append(mx, iv.MaxUs)
			prev := 0.0
			if i > 0 {
				prev = r.Timeline[i-1].EndS
			}
			ops = append(ops, float64(iv.Ops)/math.Max(iv.EndS-prev, 1e-9))
		}
		writeChart(&b, "latency per second (log scale)", xs, []series{{"max", "#bbb", mx}, {"p99", "#d62728", p99},
			{"p50", "#1f77b4", p50}}, true, r.CommitFloorUs, FormatDuration)
		writeChart(&b, "throughput per second", xs, []series{{"ops/s", "#2ca02c", ops}}, false, 0,
			func(v float64) string { return fmt.Sprintf("%.0f", v) })
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type series struct {
	name, color string
	ys          []float64
}

// writeChart draws series over xs (seconds); with logY the y axis is
// log10 and floorY, if positive, is drawn as a dashed line.
func writeChart(b *strings.Builder, title string, xs []float64, ss []series, logY bool, floorY float64, label func(float64) string) {
	const width, height, left, right, top, bottom = 900.0, 240.0, 70.0, 20.0, 20.0, 30.0
	tf := func(v float64) float64 {
		if logY {
			return math.Log10(math.Max(v, 1))
		}
		return v
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, y := range s.ys {
			lo, hi = math.Min(lo, tf(y)), math.Max(hi, tf(y))
		}
	}
	if floorY > 0 {
		lo, hi = math.Min(lo, tf(floorY)), math.Max(hi, tf(floorY))
	}
	if logY {
		lo, hi = math.Floor(lo), math.Ceil(hi)
	} else {
		lo = 0
	}
	if hi <= lo {
		hi = lo + 1
	}
	xmax := xs[len(xs)-1]
	px := func(x float64) float64 { return left + (width-left-right)*x/math.Max(xmax, 1e-9) }
	py := func(y float64) float64 { return top + (height-top-bottom)*(1-(tf(y)-lo)/(hi-lo)) }
	fmt.Fprintf(b, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" xmlns=\"http://www.w3.org/2000/svg\">\n", width, height, width, height)
	fmt.Fprintf(b, "<text x=\"%.0f\" y=\"14\">%s</text>\n", left, html.EscapeString(title))
	// y ticks: powers of ten (log) or quarters (linear).
	var ticks []float64
	if logY {
		for e := lo; e <= hi; e++ {
			ticks = append(ticks, math.Pow(10, e))
		}
	} else {
		for i := 0; i <= 4; i++ {
			ticks = append(ticks, hi*float64(i)/4)
		}
	}
	for _, t := range ticks {
		y := py(t)
		fmt.Fprintf(b, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\" />", left, width-right, y, y)
		fmt.Fprintf(b, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", left-4, y+4, label(t))
	}
	for s := 0; s <= int(xmax); s += max(1, int(xmax)/10) {
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%ds</text>", px(float64(s)), height-10, s)
	}
	if floorY > 0 {
		fmt.Fprintf(b, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-dasharray=\"4\" />", left, width-right, py(floorY), py(floorY))
		fmt.Fprintf(b, "<text x=\"%.0f\" y=\"%.1f\">floor</text>\n", width-right-30, py(floorY)-3)
	}
	for i, s := range ss {
		pts := make([]string, len(xs))
		for j := range xs {
			pts[j] = fmt.Sprintf("%.1f,%.1f", px(xs[j]), py(s.ys[j]))
		}
		fmt.Fprintf(b, "<polyline fill=\"none\" stroke=%q stroke-width=\"1.5\" points=%q />\n", s.color, strings.Join(pts, " "))
		fmt.Fprintf(b, "<text x=\"%.0f\" y=\"14\" fill=%q>%s</text>\n", width-right-60*float64(len(ss)-i), s.color, s.name)
	}
	b.WriteString("</svg>\n")
}

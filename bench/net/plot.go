package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ckptio/ckptio/storage"
)

// colors, one per window in order.
var colors = []string{"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02"}

// plot draws bandwidth against the number of stores, one line per window:
// durable rates on the left (replicas 1 solid, replicas 2 dashed) with the
// line rate and the target, application-perceived rates on the right. It
// uses gnuplot; without it, it writes bandwidth.svg instead and says so.
func plot(res Results, work, out string) error {
	if _, err := exec.LookPath("gnuplot"); err != nil {
		path := filepath.Join(out, "bandwidth.svg")
		fmt.Printf("gnuplot not found: writing %s instead of bandwidth.png\n", path)
		return os.WriteFile(path, []byte(svg(res)), 0o644)
	}
	script := filepath.Join(work, "bandwidth.gp")
	if err := os.WriteFile(script, []byte(gnuplot(res, filepath.Join(out, "bandwidth.png"))), 0o644); err != nil {
		return err
	}
	cmd := exec.Command("gnuplot", script)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("gnuplot %s: %w", script, err)
	}
	return nil
}

// series is one line of the plot.
type series struct {
	window, replicas int
	pts              [][3]float64 // stores, durable, app
}

func allSeries(sum []Summary) []series {
	var out []series
	for _, r := range []int{1, 2} {
		for _, w := range windowsOf(sum) {
			s := series{window: w, replicas: r}
			for _, n := range storesOf(sum) {
				if run, ok := find(sum, n, w, r); ok {
					s.pts = append(s.pts, [3]float64{float64(n), run.DurableMBps, run.AppMBps})
				}
			}
			if len(s.pts) > 0 {
				out = append(out, s)
			}
		}
	}
	return out
}

func gnuplot(res Results, png string) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	ss := allSeries(res.Summary)
	for i, s := range ss {
		p("$s%d << EOD\n", i)
		for _, pt := range s.pts {
			p("%g %.3f %.3f\n", pt[0], pt[1], pt[2])
		}
		p("EOD\n")
	}
	ws := windowsOf(res.Summary)
	color := func(w int) string { return colors[max(0, slices.Index(ws, w))%len(colors)] }
	plotLines := func(col int) string {
		var parts []string
		for i, s := range ss {
			dt, title := 1, fmt.Sprintf("window %d", s.window)
			if s.replicas == 2 {
				dt, title = 2, fmt.Sprintf("window %d, replicas 2", s.window)
			}
			parts = append(parts, fmt.Sprintf("$s%d using 1:%d with linespoints lw 2 pt 7 ps 0.8 dt %d lc rgb '%s' title '%s'",
				i, col, dt, color(s.window), title))
		}
		return strings.Join(parts, ", \\\n  ")
	}
	p("set terminal pngcairo size 1400,560 font 'sans,10'\n")
	p("set output '%s'\n", png)
	p("set multiplot layout 1,2 title 'ckptio writes over emulated 1 Gbit/s links (%s per run, medians; replicas 1 solid, 2 dashed)'\n",
		storage.FormatSize(res.Setup.Bytes))
	p("set logscale x 2\nset xtics (1,2,4,8)\nset xrange [0.85:9.5]\nset grid\nset key bottom right font ',8'\n")
	p("set xlabel 'stores'\nset ylabel 'MB/s of payload'\n")
	p("set title 'durable (until the commit returned)'\nset yrange [0:%g]\n", res.Setup.LineMBps*1.2)
	p("plot %g with lines dt 3 lw 1 lc rgb 'black' title 'line rate %.0f MB/s', \\\n", res.Setup.LineMBps, res.Setup.LineMBps)
	p("  %g with lines dt 4 lw 1 lc rgb 'red' title 'target %.1f MB/s', \\\n  %s\n", res.Target.NeedMBps, res.Target.NeedMBps, plotLines(2))
	p("set title 'application-perceived (until the last PutBlock returned)'\nset logscale y\nset yrange [*:*]\nset key top left font ',8'\n")
	p("plot %s\n", plotLines(3))
	p("unset multiplot\n")
	return b.String()
}

// svg draws the durable panel alone, by hand, for machines without gnuplot.
func svg(res Results) string {
	const w, h, left, bottom, top, right = 720.0, 440.0, 60.0, 50.0, 40.0, 200.0
	ymax := res.Setup.LineMBps * 1.2
	x := func(stores float64) float64 {
		// log2 scale over 1..8.
		l := 0.0
		for v := stores; v > 1; v /= 2 {
			l++
		}
		return left + l/3*(w-left-right)
	}
	y := func(v float64) float64 { return h - bottom - v/ymax*(h-bottom-top) }
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" font-family="sans-serif" font-size="11">`+"\n", w, h)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%g" y="20" font-size="13">durable MB/s vs stores (1 Gbit/s links; replicas 1 solid, 2 dashed)</text>`+"\n", left)
	for _, n := range []float64{1, 2, 4, 8} {
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="middle">%g</text>`+"\n",
			x(n), y(0), x(n), y(ymax), x(n), y(0)+16, n)
	}
	for v := 0.0; v <= ymax; v += 25 {
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%g</text>`+"\n",
			left, y(v), x(8), y(v), left-4, y(v)+4, v)
	}
	p(`<text x="%.1f" y="%.1f" text-anchor="middle">stores</text>`+"\n", (left+x(8))/2, h-12)
	for _, ref := range []struct {
		v     float64
		color string
		label string
	}{{res.Setup.LineMBps, "black", "line rate"}, {res.Target.NeedMBps, "red", "target"}} {
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="2,3"/><text x="%.1f" y="%.1f" fill="%s">%s %.1f</text>`+"\n",
			left, y(ref.v), x(8), y(ref.v), ref.color, x(8)+6, y(ref.v)+4, ref.color, ref.label, ref.v)
	}
	ws := windowsOf(res.Summary)
	for i, s := range allSeries(res.Summary) {
		c := colors[max(0, slices.Index(ws, s.window))%len(colors)]
		dash := ""
		if s.replicas == 2 {
			dash = ` stroke-dasharray="6,4"`
		}
		var pts []string
		for _, pt := range s.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(pt[0]), y(pt[1])))
		}
		p(`<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", c, dash, strings.Join(pts, " "))
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/><text x="%.1f" y="%.1f">window %d, replicas %d</text>`+"\n",
			x(8)+90, top+20+float64(i)*16, x(8)+110, top+20+float64(i)*16, c, dash, x(8)+114, top+24+float64(i)*16, s.window, s.replicas)
	}
	p("</svg>\n")
	return b.String()
}

package main

import (
	"fmt"
	"image/color"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// plotIngest draws routes/s against table size N (log-log), one line per
// implementation, family and packing: ours solid, the reference dashed.
// Bounded reference runs are drawn at their partial rate.
func plotIngest(r *results, path string) error {
	p := plot.New()
	p.Title.Text = "Route ingestion: first UPDATE -> all N routes in the instance"
	p.X.Label.Text = "routes in the feed (N)"
	p.Y.Label.Text = "routes/s"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = powerTicks{}, powerTicks{}
	p.Y.Min, p.Y.Max = 100, 2e6
	p.Legend.Top, p.Legend.Left = false, false // bottom right: nothing there
	p.Add(plotter.NewGrid())

	type series struct {
		impl, fam, pack string
		pts             plotter.XYs
	}
	by := map[string]*series{}
	var names []string
	for _, x := range r.Ingest {
		if x.Err != "" || x.Rate <= 0 {
			continue
		}
		k := x.Impl + " " + x.Family + " " + x.Packing
		s := by[k]
		if s == nil {
			s = &series{impl: x.Impl, fam: x.Family, pack: x.Packing}
			by[k] = s
			names = append(names, k)
		}
		s.pts = append(s.pts, plotter.XY{X: float64(x.N), Y: x.Rate})
	}
	sort.Strings(names)
	colors := map[string]color.Color{
		"E-VPN 1/UPDATE": color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		"E-VPN packed":   color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
		"VPNv4 1/UPDATE": color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
		"VPNv4 packed":   color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	}
	for _, k := range names {
		s := by[k]
		sort.Slice(s.pts, func(i, j int) bool { return s.pts[i].X < s.pts[j].X })
		line, points, err := plotter.NewLinePoints(s.pts)
		if err != nil {
			return err
		}
		c := colors[s.fam+" "+s.pack]
		if c == nil {
			c = color.Black
		}
		line.Color, points.Color = c, c
		line.Width = vg.Points(1.5)
		points.Shape = draw.CircleGlyph{}
		if s.impl != "ours" {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			points.Shape = draw.TriangleGlyph{}
		}
		p.Add(line, points)
		p.Legend.Add(fmt.Sprintf("%s, %s %s", s.impl, s.fam, s.pack), line, points)
	}
	p.X.Min, p.X.Max = 700, 1.4e6
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// powerTicks marks the powers of ten as 100, 1k, 10k, 100k, 1M.
type powerTicks struct{}

func (powerTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for v := 1.0; v <= max; v *= 10 {
		if v >= min {
			out = append(out, plot.Tick{Value: v, Label: countN(int(v))})
		}
	}
	return out
}

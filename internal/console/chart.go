package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/manage"
)

// Chart geometry, in SVG user units (the SVG scales to its container).
const (
	chartW      = 720
	chartLeft   = 56
	chartRight  = 60
	plotW       = chartW - chartLeft - chartRight
	panelTitleH = 38
	plotH       = 110
	panelGap    = 16
	axisH       = 30
)

// chartHours are the periods a chart can show, with the step of each.
var chartHours = []struct {
	Hours int
	Step  time.Duration
}{{1, time.Minute}, {3, time.Minute}, {6, 2 * time.Minute}, {12, 5 * time.Minute}, {24, 10 * time.Minute}}

// chartHoursOK reports whether hours is one of the periods offered.
func chartHoursOK(hours int) (time.Duration, bool) {
	for _, h := range chartHours {
		if h.Hours == hours {
			return h.Step, true
		}
	}
	return 0, false
}

// periodLink is one of the chart's periods on offer.
type periodLink struct {
	Label, Title, URL string
	Current           bool
}

// periodLinks offers "auto" (the chart chooses its period from the
// traffic) and each of chartHours; current is the chart's hours (0 for
// auto), and url gives the page's address for a number of hours.
func periodLinks(current int, url func(hours int) string) []periodLink {
	out := []periodLink{{Label: "auto", Title: fmt.Sprintf("from just before the first call in the last %d hours", autoHours), URL: url(0), Current: current == 0}}
	for _, h := range chartHours {
		out = append(out, periodLink{Label: fmt.Sprintf("%d h", h.Hours), URL: url(h.Hours), Current: current == h.Hours})
	}
	return out
}

func chartStep(hours int) (int, time.Duration) {
	for _, h := range chartHours {
		if h.Hours == hours {
			return h.Hours, h.Step
		}
	}
	return 3, time.Minute
}

// chartKey is one key on a chart: "old" and "new" in the rotation wizard,
// "key" on a key's own page.
type chartKey struct {
	Role string
	Key  *latchkey.AccessKey
}

type chartModel struct {
	RefreshURL     string
	RefreshSeconds int
	Generated      time.Time
	Hours          int
	StepLabel      string
	Title          string
	Desc           string
	W, H           int
	Panels         []chartPanel
	XTicks         []chartTick
	Legend         []legendItem
	Marker         *chartMarker
	Summary        []keySummary
	Window         string
	Table          chartTable
}

type chartPanel struct {
	Title  string
	Top    int // top of the plot area
	Bottom int
	YTicks []chartTick
	Lines  []chartLine
}

type chartLine struct {
	Class  string
	Dash   string
	Width  string
	D      string
	Shape  string // marker shape for non-zero points: circle or square
	Marks  []chartPoint
	Label  string
	LabelY float64
}

type chartPoint struct{ X, Y float64 }

type chartTick struct {
	Pos   float64
	Label string
}

type legendItem struct {
	Role, KeyID, Class, Dash, Width, Shape string
}

type chartMarker struct {
	X     float64
	Label string
}

type keySummary struct {
	Role         string
	Key          *latchkey.AccessKey
	Valid        int64
	Rejected     int64
	ByCode       []codeCount
	LastUsed     *latchkey.Use
	LastRejected *latchkey.Rejection
}

type codeCount struct {
	Code  latchkey.Code
	Count int64
}

type chartTable struct {
	Roles []string
	Rows  []tableRow
}

type tableRow struct {
	At    time.Time
	Cells []int64 // valid, rejected per key
}

// lineStyle distinguishes keys without colour: the old key is dashed and
// thin with circles, the new key solid and thick with squares, and every
// line is labelled at its end.
func lineStyle(role string) (class, dash, width, shape string) {
	switch role {
	case "old":
		return "s-old", "7 4", "2", "circle"
	case "new":
		return "s-new", "", "3", "square"
	}
	return "s-key", "", "2.5", "square"
}

// autoHours is the longest period the chart chooses by itself.
const autoHours = 3

// buildChart reads each key's usage over the last hours and lays it out.
// With hours 0 the chart chooses its period from the traffic (see
// fitToTraffic), within the last autoHours. deactivated, when set, marks
// when the old key was made Inactive.
func (c *Console) buildChart(ctx context.Context, u *user, keys []chartKey, hours int, deactivated *time.Time, refreshURL string) (*chartModel, error) {
	auto := hours == 0
	if auto {
		hours = autoHours
	}
	hours, step := chartStep(hours)
	now := c.now()
	from := now.Add(-time.Duration(hours) * time.Hour)
	m := &chartModel{
		RefreshURL: refreshURL, RefreshSeconds: c.RefreshSeconds, Generated: now, Hours: hours,
		StepLabel: stepWords(step), Window: durationWords(c.TrafficWindow), W: chartW,
	}
	if auto {
		m.Hours = 0
	}
	series := make([][]manage.UsagePoint, len(keys))
	for i, k := range keys {
		pts, err := c.Service.UsageSeries(ctx, u.actor, k.Key.ID, from, now, step)
		if err != nil {
			return nil, err
		}
		// drop the step in progress: a half-counted minute would look like
		// a drop in traffic. The summary above the chart counts it.
		if n := len(pts); n > 0 && pts[n-1].At.Add(step).After(now) {
			pts = pts[:n-1]
		}
		series[i] = pts
		sum, err := c.summarize(ctx, u, k, now)
		if err != nil {
			return nil, err
		}
		m.Summary = append(m.Summary, sum)
		class, dash, width, shape := lineStyle(k.Role)
		m.Legend = append(m.Legend, legendItem{Role: k.Role, KeyID: k.Key.ID, Class: class, Dash: dash, Width: width, Shape: shape})
	}
	if auto {
		series = fitToTraffic(series)
	}
	n := 0
	if len(series) > 0 {
		n = len(series[0])
	}
	period := time.Duration(hours) * time.Hour
	if auto {
		period = time.Duration(n) * step
	}
	xAt := func(i int) float64 {
		if n < 2 {
			return chartLeft
		}
		return chartLeft + float64(i)*plotW/float64(n-1)
	}
	valid := func(p manage.UsagePoint) int64 { return p.Valid }
	per := "per " + m.StepLabel
	for pi, pan := range []struct {
		title string
		val   func(manage.UsagePoint) int64
	}{{"Valid requests " + per, valid}, {"Rejected requests " + per, rejectedSum}} {
		top := pi*(panelTitleH+plotH+panelGap) + panelTitleH
		p := chartPanel{Title: pan.title, Top: top, Bottom: top + plotH}
		var peak int64
		for _, s := range series {
			for _, pt := range s {
				peak = max(peak, pan.val(pt))
			}
		}
		ymax := niceMax(peak)
		for _, v := range []int64{0, ymax / 2, ymax} {
			p.YTicks = append(p.YTicks, chartTick{Pos: float64(top+plotH) - float64(v)/float64(ymax)*plotH, Label: number(v)})
		}
		yAt := func(v int64) float64 { return float64(top+plotH) - float64(v)/float64(ymax)*plotH }
		for ki, s := range series {
			class, dash, width, shape := lineStyle(keys[ki].Role)
			l := chartLine{Class: class, Dash: dash, Width: width, Shape: shape, Label: keys[ki].Role}
			var d strings.Builder
			for i, pt := range s {
				x, y := xAt(i), yAt(pan.val(pt))
				if i == 0 {
					fmt.Fprintf(&d, "M%.1f %.1f", x, y)
				} else {
					fmt.Fprintf(&d, " L%.1f %.1f", x, y)
				}
				if pi == 1 && pan.val(pt) > 0 && len(l.Marks) < 300 {
					l.Marks = append(l.Marks, chartPoint{x, y})
				}
			}
			l.D = d.String()
			l.LabelY = float64(top + plotH)
			if len(s) > 0 {
				l.LabelY = yAt(pan.val(s[len(s)-1]))
			}
			p.Lines = append(p.Lines, l)
		}
		spreadLabels(p.Lines, float64(top), float64(top+plotH))
		m.Panels = append(m.Panels, p)
	}
	m.H = len(m.Panels)*(panelTitleH+plotH+panelGap) - panelGap + axisH
	if n > 0 {
		first := series[0][0].At
		span := series[0][n-1].At.Sub(first)
		tick := tickEvery(period)
		for t := first.Truncate(tick); !t.After(first.Add(span)); t = t.Add(tick) {
			if t.Before(first) {
				continue
			}
			xf := float64(chartLeft)
			if span > 0 {
				xf = chartLeft + float64(t.Sub(first))/float64(span)*plotW
			}
			m.XTicks = append(m.XTicks, chartTick{Pos: xf, Label: t.UTC().Format("15:04")})
		}
		if deactivated != nil && !deactivated.Before(first) && span > 0 && !deactivated.After(first.Add(span+step)) {
			x := chartLeft + float64(deactivated.Sub(first))/float64(span)*plotW
			m.Marker = &chartMarker{X: min(x, chartLeft+plotW), Label: "old key deactivated " + deactivated.UTC().Format("15:04")}
		}
	}
	m.Title = fmt.Sprintf("Requests %s over the last %s (times in UTC)", per, durationWords(period))
	m.Desc = chartDescription(m)
	m.Table = chartTableFor(keys, series, 15, valid, rejectedSum)
	return m, nil
}

// summarize counts a key's calls in the traffic window (including the
// minute in progress) and picks its last use and last rejection.
func (c *Console) summarize(ctx context.Context, u *user, k chartKey, now time.Time) (keySummary, error) {
	s := keySummary{Role: k.Role, Key: k.Key, LastUsed: k.Key.LastUsed, LastRejected: k.Key.LastRejected}
	pts, err := c.Service.UsageSeries(ctx, u.actor, k.Key.ID, now.Add(-c.TrafficWindow), now, time.Minute)
	if err != nil {
		return s, err
	}
	by := map[latchkey.Code]int64{}
	for _, p := range pts {
		if p.At.Before(now.Add(-c.TrafficWindow).Truncate(time.Minute)) {
			continue
		}
		s.Valid += p.Valid
		for code, n := range p.Rejected {
			s.Rejected += n
			by[code] += n
		}
	}
	for code, n := range by {
		s.ByCode = append(s.ByCode, codeCount{code, n})
	}
	sort.Slice(s.ByCode, func(i, j int) bool { return s.ByCode[i].Count > s.ByCode[j].Count })
	return s, nil
}

func chartTableFor(keys []chartKey, series [][]manage.UsagePoint, rows int, valid, rejected func(manage.UsagePoint) int64) chartTable {
	var t chartTable
	for _, k := range keys {
		t.Roles = append(t.Roles, k.Role)
	}
	if len(series) == 0 {
		return t
	}
	n := len(series[0])
	for i := n - 1; i >= 0 && i >= n-rows; i-- {
		r := tableRow{At: series[0][i].At}
		for _, s := range series {
			r.Cells = append(r.Cells, valid(s[i]), rejected(s[i]))
		}
		t.Rows = append(t.Rows, r)
	}
	return t
}

func chartDescription(m *chartModel) string {
	var parts []string
	for _, s := range m.Summary {
		what := fmt.Sprintf("%s key %s: %s valid and %s rejected requests in the last %s", s.Role, s.Key.ID, number(s.Valid), number(s.Rejected), m.Window)
		if s.LastUsed != nil {
			what += ", last used " + ago(m.Generated, s.LastUsed.At)
		} else {
			what += ", never used"
		}
		parts = append(parts, what)
	}
	return strings.Join(parts, "; ") + "."
}

// spreadLabels moves end-of-line labels apart so they never overlap.
func spreadLabels(lines []chartLine, top, bottom float64) {
	const gap = 22 // room for the labels' larger size on phones
	if len(lines) != 2 {
		return
	}
	a, b := &lines[0], &lines[1]
	if d := a.LabelY - b.LabelY; d > -gap && d < gap {
		mid := (a.LabelY + b.LabelY) / 2
		lo, hi := a, b
		if a.LabelY < b.LabelY || (a.LabelY == b.LabelY && a.Label == "old") {
			lo, hi = b, a
		}
		hi.LabelY, lo.LabelY = mid-gap/2, mid+gap/2
		if hi.LabelY < top+4 {
			hi.LabelY, lo.LabelY = top+4, top+4+gap
		}
		if lo.LabelY > bottom {
			lo.LabelY, hi.LabelY = bottom, bottom-gap
		}
	}
}

// niceMax returns an even, round upper bound at or above v (2, 4, 6, 8,
// 10, 20, 40, ...), so that the middle gridline is a whole number too.
func niceMax(v int64) int64 {
	for base := int64(1); base <= 1e15; base *= 10 {
		for _, m := range []int64{2, 4, 6, 8, 10} {
			if m*base >= v {
				return m * base
			}
		}
	}
	return v + v%2
}

// fitToTraffic cuts the quiet start off the series of a chart whose
// period the user did not choose, so that the traffic fills the chart
// instead of a sliver at its right edge: the series then start a step
// before the first step with a call (valid or refused) of any key, rounded
// up to whole multiples of 5 steps, 10 steps at least. Series without a
// call are left whole.
func fitToTraffic(series [][]manage.UsagePoint) [][]manage.UsagePoint {
	const round, least = 5, 10
	if len(series) == 0 {
		return series
	}
	n := len(series[0])
	first := n
	for _, s := range series {
		for i, p := range s[:min(first, len(s))] {
			if p.Valid > 0 || rejectedSum(p) > 0 {
				first = i
				break
			}
		}
	}
	if first == n {
		return series
	}
	keep := n - first + 1
	keep = max(least, (keep+round-1)/round*round)
	if keep >= n {
		return series
	}
	out := make([][]manage.UsagePoint, len(series))
	for i, s := range series {
		out[i] = s[len(s)-keep:]
	}
	return out
}

func rejectedSum(p manage.UsagePoint) int64 {
	var s int64
	for _, v := range p.Rejected {
		s += v
	}
	return s
}

// tickEvery is the distance between the time axis's labels for a chart
// of the given period.
func tickEvery(period time.Duration) time.Duration {
	switch {
	case period <= 20*time.Minute:
		return 5 * time.Minute
	case period <= time.Hour:
		return 10 * time.Minute
	case period <= 3*time.Hour:
		return 30 * time.Minute
	case period <= 6*time.Hour:
		return time.Hour
	case period <= 12*time.Hour:
		return 2 * time.Hour
	}
	return 4 * time.Hour
}

func stepWords(d time.Duration) string {
	if d == time.Minute {
		return "minute"
	}
	return durationWords(d)
}

func durationWords(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		if d == time.Hour {
			return "hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

// chartFragment answers the script's request for a fresh chart: the chart
// alone, as HTML. ?with= names the new key of a rotation.
func (c *Console) chartFragment(w http.ResponseWriter, r *http.Request, u *user) error {
	ctx := r.Context()
	k, err := c.appKey(ctx, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	var nk *latchkey.AccessKey
	if with := r.URL.Query().Get("with"); with != "" {
		if nk, err = c.appKey(ctx, u, with); err != nil {
			return err
		}
	}
	hours, _ := strconv.Atoi(r.URL.Query().Get("hours"))
	m, err := c.chartOf(ctx, u, k, nk, hours)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := c.pages["chart"].ExecuteTemplate(&b, "chart", m); err != nil {
		return latchkey.Internal(err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
	return nil
}

// chartOf builds the chart of key k alone or, when nk is set, the rotation
// chart of k (old) and nk (new), with the old key's deactivation marked.
// hours is one of the periods offered; anything else lets the chart choose
// its period from the traffic.
func (c *Console) chartOf(ctx context.Context, u *user, k, nk *latchkey.AccessKey, hours int) (*chartModel, error) {
	q := url.Values{}
	if _, ok := chartHoursOK(hours); ok {
		q.Set("hours", strconv.Itoa(hours))
	} else {
		hours = 0
	}
	keys := []chartKey{{Role: "key", Key: k}}
	var deactivated *time.Time
	if nk != nil {
		if nk.Application != k.Application || nk.Account != k.Account || nk.ID == k.ID {
			return nil, latchkey.Errorf(latchkey.EINVALID, "the new key must be another key of application %s", k.Application)
		}
		keys = []chartKey{{Role: "old", Key: k}, {Role: "new", Key: nk}}
		q.Set("with", nk.ID)
		if k.Status == latchkey.StatusInactive {
			var err error
			if deactivated, err = c.deactivatedAt(ctx, u, k); err != nil {
				return nil, err
			}
		}
	}
	refresh := u.prefix() + "/keys/" + url.PathEscape(k.ID) + "/chart"
	if len(q) > 0 {
		refresh += "?" + q.Encode()
	}
	return c.buildChart(ctx, u, keys, hours, deactivated, refresh)
}

package manage

import (
	"context"
	"sort"
	"time"

	"github.com/latchkey/latchkey"
)

// UsagePoint is one step of a key's usage series: calls accepted and calls
// refused, by code.
type UsagePoint struct {
	At       time.Time               `json:"at"`
	Valid    int64                   `json:"valid"`
	Rejected map[latchkey.Code]int64 `json:"rejected"`
}

// MaxUsagePoints bounds a usage series.
const MaxUsagePoints = 2000

// UsageSeries returns a key's calls per step in [from, to), including what
// is still in memory, so a chart is live. Returns ENOTFOUND for keys the
// actor cannot see and EINVALID for a bad range or step.
func (s *Service) UsageSeries(ctx context.Context, a latchkey.Actor, id string, from, to time.Time, step time.Duration) ([]UsagePoint, error) {
	if step < time.Minute || step%time.Minute != 0 || step > 24*time.Hour {
		return nil, latchkey.Errorf(latchkey.EINVALID, "step must be a whole number of minutes from 1m to 24h")
	}
	if !from.Before(to) {
		return nil, latchkey.Errorf(latchkey.EINVALID, "from must be before to")
	}
	from, to = from.Truncate(step), to.Truncate(step).Add(step)
	n := int(to.Sub(from) / step)
	if n > MaxUsagePoints {
		return nil, latchkey.Errorf(latchkey.EINVALID, "from..to holds %d steps of %s; at most %d are allowed (use a larger step)", n, step, MaxUsagePoints)
	}
	if _, err := s.GetAccessKey(ctx, a, id); err != nil {
		return nil, err
	}
	return s.usagePoints(ctx, []string{id}, from, to, step, n)
}

// IdentityUsage returns the calls per step in [from, to) of every key of
// every application of an identity, summed (see UsageSeries). Returns
// ENOTFOUND for an identity the actor cannot see and EINVALID for a bad
// range or step.
func (s *Service) IdentityUsage(ctx context.Context, a latchkey.Actor, account, id string, from, to time.Time, step time.Duration) ([]UsagePoint, error) {
	if step < time.Minute || step%time.Minute != 0 || step > 24*time.Hour {
		return nil, latchkey.Errorf(latchkey.EINVALID, "step must be a whole number of minutes from 1m to 24h")
	}
	if !from.Before(to) {
		return nil, latchkey.Errorf(latchkey.EINVALID, "from must be before to")
	}
	from, to = from.Truncate(step), to.Truncate(step).Add(step)
	n := int(to.Sub(from) / step)
	if n > MaxUsagePoints {
		return nil, latchkey.Errorf(latchkey.EINVALID, "from..to holds %d steps of %s; at most %d are allowed (use a larger step)", n, step, MaxUsagePoints)
	}
	if _, err := s.GetIdentity(ctx, a, account, id); err != nil {
		return nil, err
	}
	var ids []string
	err := s.Store.View(ctx, func(tx latchkey.Tx) (err error) {
		ids, err = tx.IdentityKeyIDs(ctx, account, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.usagePoints(ctx, ids, from, to, step, n)
}

// usagePoints sums the usage of keys ids, stored and pending, into n
// steps from from.
func (s *Service) usagePoints(ctx context.Context, ids []string, from, to time.Time, step time.Duration, n int) ([]UsagePoint, error) {
	var counts []latchkey.UsageCount
	var err error
	s.Index.ReadUsage(func() {
		for _, id := range ids {
			c, e := s.Store.UsageSeries(ctx, id, from, to)
			if e != nil {
				err = e
				return
			}
			counts = append(counts, c...)
			counts = append(counts, s.Index.PendingUsage(id).Minutes...)
		}
	})
	if err != nil {
		return nil, err
	}
	points := make([]UsagePoint, n)
	for i := range points {
		points[i] = UsagePoint{At: from.Add(time.Duration(i) * step), Rejected: map[latchkey.Code]int64{}}
	}
	for _, c := range counts {
		if c.At.Before(from) || !c.At.Before(to) {
			continue
		}
		p := &points[int(c.At.Sub(from)/step)]
		if c.Code == latchkey.CodeValid {
			p.Valid += c.Count
		} else {
			p.Rejected[c.Code] += c.Count
		}
	}
	sort.Slice(points, func(i, j int) bool { return points[i].At.Before(points[j].At) })
	return points, nil
}

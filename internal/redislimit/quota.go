package redislimit

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/latchkey/latchkey/internal/verify"
	"github.com/redis/go-redis/v9"
)

//go:embed quota.lua
var quotaSource string

var quotaScript = redis.NewScript(quotaSource)

// SpendQuota decides one call on the quota of the access key named id in
// generation gen, in one atomic script (quota.lua): the units that the
// replicas leased from the ledger into Redis are shared by all of them,
// so that a quota of N grants exactly N across replicas. add units just
// leased are added first, and ledgerLeft (-1: unchanged) records what the
// ledger had left after that lease. ttl bounds how long an idle state is
// kept (0: forever).
//
// It returns whether the call is allowed; pool, what is leased into Redis
// and not spent after the call; ledgerLeft, what the ledger had left at
// the latest lease in this period (-1 when no replica has leased in it
// yet); and the period of the state in Redis, later than the one asked
// when the caller's clock is behind. An error wraps ErrUnavailable: the
// caller refuses (it implements verify.QuotaStore).
func (l *Limiter) SpendQuota(ctx context.Context, id string, gen, period, cost, need, add, ledgerLeft int64, ttl time.Duration) (allowed bool, pool, left, statePeriod int64, err error) {
	if until := l.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return false, 0, -1, 0, ErrUnavailable
	}
	key := l.quotaKey(id, gen)
	v, err := quotaScript.Run(ctx, l.client, []string{key}, period, cost, need, add, ledgerLeft, ttl.Milliseconds()).Int64Slice()
	if err != nil || len(v) != 4 {
		if err == nil {
			err = fmt.Errorf("unexpected reply %v", v)
		}
		l.failed(err)
		return false, 0, -1, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	l.answered()
	return v[0] == 1, v[1], v[2], v[3], nil
}

//go:embed quota_pair.lua
var quotaPairSource string

var quotaPairScript = redis.NewScript(quotaPairSource)

// SpendQuotas decides one call on two quotas at once, a key's and its
// identity's, in one atomic script (quota_pair.lua): cost is taken from
// both only if both hold need. Each quota's Add and LedgerLeft are
// applied whatever the outcome, and its Pool, Left and StatePeriod are
// set from the answer. It implements verify.QuotaStore; an error wraps
// ErrUnavailable.
func (l *Limiter) SpendQuotas(ctx context.Context, a, b *verify.QuotaSpend, cost, need int64) (bool, error) {
	if until := l.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return false, ErrUnavailable
	}
	keys := []string{l.quotaKey(a.ID, a.Gen), l.quotaKey(b.ID, b.Gen)}
	v, err := quotaPairScript.Run(ctx, l.client, keys, cost, need,
		a.Period, a.Add, a.LedgerLeft, a.TTL.Milliseconds(),
		b.Period, b.Add, b.LedgerLeft, b.TTL.Milliseconds()).Int64Slice()
	if err != nil || len(v) != 7 {
		if err == nil {
			err = fmt.Errorf("unexpected reply %v", v)
		}
		l.failed(err)
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	l.answered()
	a.Pool, a.Left, a.StatePeriod = v[1], v[2], v[3]
	b.Pool, b.Left, b.StatePeriod = v[4], v[5], v[6]
	return v[0] == 1, nil
}

func (l *Limiter) quotaKey(id string, gen int64) string {
	return l.prefix + "quota:" + id + ":" + strconv.FormatInt(gen, 10)
}

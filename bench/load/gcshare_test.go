package main

import (
	"strings"
	"testing"
)

func TestGCShareOf(t *testing.T) {
	top := `Showing nodes accounting for 4.01s, 100% of 4.01s total
      flat  flat%   sum%        cum   cum%
     0.01s  0.25%  0.25%      2.93s 73.07%  net/http.(*conn).serve
         0     0% 38.15%      0.06s  1.50%  runtime.gcBgMarkWorker
         0     0% 38.15%      0.02s  0.50%  runtime.gcAssistAlloc
`
	got, err := gcShareOf(top)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "2.00% (runtime.gcBgMarkWorker 1.50%, runtime.gcAssistAlloc 0.50%)") {
		t.Errorf("gcShareOf = %q", got)
	}
}

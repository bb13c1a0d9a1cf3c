package sqlite

import (
	"testing"
	"time"
)

// TestCheckpointDue: the usage flush checkpoints on its first write, then
// once checkpointKeys keys have been written since the last checkpoint or
// checkpointEvery has passed, not after every transaction.
func TestCheckpointDue(t *testing.T) {
	s := &Store{}
	steps := []struct {
		name  string
		keys  int
		since time.Duration // age of the last checkpoint before the call
		want  bool
	}{
		{"first write", 250, 0, true},
		{"next transaction", 250, time.Millisecond, false},
		{"still short of a full flush", checkpointKeys - 600, time.Millisecond, false},
		{"a full flush written", 350, time.Millisecond, true},
		{"a small write soon after", 1, time.Millisecond, false},
		{"a small write a while later", 1, checkpointEvery, true},
	}
	for _, st := range steps {
		if st.since > 0 {
			s.ckptAt = time.Now().Add(-st.since)
		}
		if got := s.checkpointDue(st.keys); got != st.want {
			t.Errorf("%s: checkpointDue(%d) = %v, want %v", st.name, st.keys, got, st.want)
		}
	}
}

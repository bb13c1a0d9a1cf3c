package scan

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Progress timing: nothing is drawn for scans that finish within
// progressDelay, so a small tree prints no flicker.
const (
	progressDelay = 500 * time.Millisecond
	progressEvery = 200 * time.Millisecond
)

// StartProgress redraws one status line on w (a terminal) from stats until
// stop is called; stop erases the line. The caller decides whether w is a
// terminal: when output is piped there should be no progress at all.
func StartProgress(w io.Writer, stats func() Stats) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		drawn := false
		defer func() {
			if drawn {
				fmt.Fprint(w, "\r\x1b[K")
			}
		}()
		select {
		case <-done:
			return
		case <-time.After(progressDelay):
		}
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			fmt.Fprint(w, "\r\x1b[K"+progressLine(stats(), time.Since(start)))
			drawn = true
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done); wg.Wait() })
	}
}

// progressLine renders stats, e.g.
// "scanning: 1,234 files, 56.7 MB, 1 finding, 3s" or, for a history,
// "scanning: 320 commits, 1,200/1,500 blobs, 56.7 MB, 0 findings, 3s".
func progressLine(st Stats, elapsed time.Duration) string {
	s := "scanning: "
	if st.Commits > 0 {
		s += fmt.Sprintf("%s, %s/%s blobs, ", plural(st.Commits, "commit"), thousands(st.BlobsDone), thousands(st.Blobs))
	} else {
		s += plural(st.Files, "file") + ", "
	}
	s += fmt.Sprintf("%s, %s, %s", megabytes(st.Bytes), plural(st.Findings, "finding"), elapsed.Truncate(time.Second))
	return s
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return thousands(n) + " " + word + "s"
}

// Summary is the closing line of a text report, e.g.
// "scanned 1,234 files (56.7 MB) in 1.2s: 2 findings; 3 binary files skipped".
func Summary(st Stats, elapsed time.Duration) string {
	s := fmt.Sprintf("scanned %s (%s)", plural(st.Files, "file"), megabytes(st.Bytes))
	if st.Commits > 0 {
		s += fmt.Sprintf(" from %s", plural(st.Commits, "commit"))
	}
	s += fmt.Sprintf(" in %s: %s", elapsed.Round(time.Millisecond), plural(st.Findings, "finding"))
	if st.Binary > 0 {
		s += fmt.Sprintf("; %s skipped as binary", plural(st.Binary, "file"))
	}
	if st.Unreadable > 0 {
		s += fmt.Sprintf("; %s could not be read", plural(st.Unreadable, "file"))
	}
	return s
}

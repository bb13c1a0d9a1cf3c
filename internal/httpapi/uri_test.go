package httpapi

import "testing"

// FuzzSplitURI: the shortcut splitURI takes for plain request URIs gives
// the path and query parseURI gives, for any URI.
func FuzzSplitURI(f *testing.F) {
	for _, s := range []string{"/shipments/42", "/a?b=c&d", "/a?", "/a%2Fb?c=%41", "http://h/p?q", "*", "", "/a b?c#d", "/\x00?x", "//h/p?q?r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		path, query := splitURI(uri)
		u := parseURI(uri)
		if path != u.Path || query != u.RawQuery {
			t.Errorf("splitURI(%q) = %q, %q; parseURI gives %q, %q", uri, path, query, u.Path, u.RawQuery)
		}
	})
}

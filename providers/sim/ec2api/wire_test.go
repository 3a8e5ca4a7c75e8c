package ec2api

import (
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		want   bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything", true},
		{"?", "", false},
		{"?", "a", true},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"*c", "abc", true},
		{"a*", "a", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxcyyb", false},
		{"Windows_Server-2019-*", "Windows_Server-2019-English-Full-Base-2024.07.10", true},
		{"i-?????", "i-0001", false},
		{"**a", "a", true},
		{"*?", "", false},
		// Many wildcards that almost match: exponential for a naive
		// backtracking matcher, linear here.
		{strings.Repeat("*0", 40) + "*x", "i-" + strings.Repeat("0", 60) + "1", false},
		{strings.Repeat("*0", 40) + "*1", "i-" + strings.Repeat("0", 60) + "1", true},
	} {
		if got := glob(tc.pat, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.pat, tc.s, got, tc.want)
		}
	}
}

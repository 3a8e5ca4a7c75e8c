package sizedread

import (
	"bytes"
	"strings"
	"testing"
)

func TestReadAll(t *testing.T) {
	body := strings.Repeat("x", 5000)
	tests := []struct {
		name        string
		size, limit int64
	}{
		{"length known", 5000, 1 << 20},
		{"length unknown", -1, 1 << 20},
		{"length over the limit", 5000, 100},
		{"length understated", 10, 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadAll(strings.NewReader(body), tt.size, tt.limit)
			if err != nil || !bytes.Equal(got, []byte(body)) {
				t.Fatalf("read %d bytes, err %v; want the whole %d-byte body", len(got), err, len(body))
			}
		})
	}
}

// Package sizedread reads an HTTP body whole into a buffer sized once from
// its declared length.
package sizedread

import (
	"bytes"
	"io"
)

// ReadAll reads r whole, as io.ReadAll does, into a buffer sized once from
// size (a Content-Length) when it is known and at most limit; io.ReadAll
// grows from 512 bytes, copying as it goes. It does not bound r: wrap it
// in a limiting reader.
func ReadAll(r io.Reader, size, limit int64) ([]byte, error) {
	var b bytes.Buffer
	if size > 0 && size <= limit {
		b.Grow(int(size) + bytes.MinRead)
	}
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

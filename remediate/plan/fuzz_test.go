package plan

import (
	"bytes"
	"testing"
)

// FuzzRead: Read never panics; an accepted plan is valid, and written and
// read again it is written identically (the file apply reads means what
// plan wrote). Seeds: testdata/fuzz/FuzzRead, made from testdata's plans.
func FuzzRead(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Read(bytes.NewReader(data))
		if err != nil {
			if p != nil {
				t.Fatalf("Read returned a plan and an error: %v", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted an invalid plan: %v", err)
		}
		var first bytes.Buffer
		if err := Write(&first, p); err != nil {
			t.Fatalf("cannot write an accepted plan: %v", err)
		}
		q, err := Read(bytes.NewReader(first.Bytes()))
		if err != nil {
			t.Fatalf("an accepted plan, written, is refused: %v\n%s", err, first.Bytes())
		}
		var second bytes.Buffer
		if err := Write(&second, q); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatalf("write-read-write is not stable:\n%s\n---\n%s", first.Bytes(), second.Bytes())
		}
	})
}

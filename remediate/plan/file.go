package plan

import (
	"bytes"
	"fmt"
	"os"

	"github.com/fixfleet/fixfleet/internal/atomicfile"
)

// ReadFile reads and checks (Read) the plan file, returning the plan and
// the file's bytes (the plan document as apply records it). Its errors
// name the file: "plan: …" when it cannot be read, "plan FILE: …" when it
// is not a valid plan.
func ReadFile(file string) (*Plan, []byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("plan: %w", err)
	}
	p, err := Read(bytes.NewReader(b))
	if err != nil {
		return nil, nil, fmt.Errorf("plan %s: %w", file, err)
	}
	return p, b, nil
}

// WriteFile writes p (Write) to file, whole or not at all.
func WriteFile(file string, p *Plan) error {
	var buf bytes.Buffer
	if err := Write(&buf, p); err != nil {
		return err
	}
	return atomicfile.Write(file, buf.Bytes())
}
